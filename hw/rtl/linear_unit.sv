// The unified linear unit: a MAC array of In x Out lanes that runs every linear layer, with
// double-buffered weight memories and the epilogues of edgemoe.golden.fixed.linear.
//
// A tile is Out outputs over the whole input row: a header (Out biases and the epilogue) on the
// b stream, then its weight words on the w stream, word k holding W[o][k*In + i] at lane
// (o*In + i); words follow the golden tile order (output tiles outer, input tiles inner). While
// the array computes a tile from one bank, the next tile loads into the other bank.
// Activation rows stream in on x, In values per beat, K/In beats per row (K/In = the number of
// weight words of the tile); x_last_i marks the last beat of the tile's last row, after which
// the unit moves to the other bank. Each row gives one y beat of Out activations:
//   acc = x . W^T (exact), e = cast_act(acc + b) (bias aligned exactly), then the epilogue
//   Bias (0): y = e;  BiasGelu (1): y = gelu(e);
//   ExpertAccumulate (2): one accum beat per row (gate score p, output-buffer row r):
//                         y = sat_act(r + cast_act(p * e)).
// Pipeline: weight read | products | adder tree + accumulator | bias + cast | GELU lanes
// (fxp_func_pkg::GeluLatency stages, every epilogue's row waiting beside them) | epilogue.
// Throughput: In*Out MACs per cycle (one x beat per cycle); one y beat per row.
`default_nettype none

module linear_unit
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned In    = LinearIn,
  parameter int unsigned Out   = LinearOut,
  parameter int unsigned XBits = ActBits,
  parameter int          XFrac = ActFracBits,
  parameter int unsigned WBits = LinearWeightBits,
  parameter int          WFrac = LinearWeightFracBits,
  parameter int unsigned BBits = BiasBits,
  parameter int          BFrac = BiasFracBits,
  // longest input row (inputs per token) the weight banks hold
  parameter int unsigned MaxK  = (Dim > MlpHidden ? (Dim > ExpertHidden ? Dim : ExpertHidden)
                                                  : (MlpHidden > ExpertHidden ? MlpHidden : ExpertHidden))
) (
  input  wire logic                         clk_i,
  input  wire logic                         rst_i,
  // tile header: biases and epilogue (edgemoe_pkg::epilogue_e)
  input  wire logic                         b_valid_i,
  output logic                              b_ready_o,
  input  wire logic [Out*BBits-1:0]         b_data_i,
  input  wire epilogue_e                    b_epilogue_i,
  // weight words of the tile
  input  wire logic                         w_valid_i,
  output logic                              w_ready_o,
  input  wire logic [Out*In*WBits-1:0]      w_data_i,
  input  wire logic                         w_last_i,
  // activation rows
  input  wire logic                         x_valid_i,
  output logic                              x_ready_o,
  input  wire logic [In*XBits-1:0]          x_data_i,
  input  wire logic                         x_last_i,
  // ExpertAccumulate: gate score and output-buffer row, one beat per row
  input  wire logic                         accum_valid_i,
  output logic                              accum_ready_o,
  input  wire logic [GateScoreBits-1:0]     accum_score_i,
  input  wire logic [Out*ActBits-1:0]       accum_row_i,
  // results, one beat per row
  output logic                              y_valid_o,
  input  wire logic                         y_ready_i,
  output logic      [Out*ActBits-1:0]       y_data_o,
  output logic                              y_last_o
);
  localparam int unsigned BankWords = MaxK / In;  // weight words per bank
  localparam int unsigned WordCountBits = $clog2(BankWords + 1);
  localparam int unsigned WordAddrBits = $clog2(BankWords) > 0 ? $clog2(BankWords) : 1;
  localparam int ProductBits = int'(XBits + WBits);  // signed product
  localparam int AccBits = ProductBits + $clog2(MaxK) + 1;
  localparam int AccFrac = XFrac + WFrac;
  localparam int SumFrac = AccFrac > BFrac ? AccFrac : BFrac;
  localparam int AccAlignedBits = AccBits + SumFrac - AccFrac;  // acc and bias at SumFrac fraction bits
  localparam int BiasAlignedBits = int'(BBits) + SumFrac - BFrac;
  localparam int SumBits = (AccAlignedBits > BiasAlignedBits ? AccAlignedBits : BiasAlignedBits) + 1;
  localparam int ScaledBits = int'(ActBits + GateScoreBits) + 1;  // score * e

  if (In < 1 || Out < 1 || MaxK < In || MaxK % In != 0) begin : gen_bad_shape
    $fatal(1, "%m: linear_unit needs In, Out >= 1 and MaxK a multiple of In (In %0d, MaxK %0d)", In, MaxK);
  end
  if (GateScoreSigned) begin : gen_bad_score
    $fatal(1, "%m: linear_unit expects an unsigned gate score format");
  end

  // ---------------------------------------------------------------- weight banks and loader
  logic [Out*In*WBits-1:0] wmem [2 * 2**WordAddrBits];  // bank b, word k at {b, k}: a power-of-two bank
  logic [Out*BBits-1:0]    bias_q [2];
  epilogue_e               epi_q [2];
  logic [WordCountBits-1:0]           words_q [2];
  logic [1:0]              full_q, full_set, full_clr;
  logic [1:0]              unread_q, unread_clr;  // loaded, and its x rows not all taken yet
  logic                    wb_q, hdr_q;
  logic [WordCountBits-1:0]           wcnt_q;

  assign b_ready_o = !full_q[wb_q] && !hdr_q;
  assign w_ready_o = hdr_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      wb_q   <= 1'b0;
      hdr_q  <= 1'b0;
      wcnt_q <= '0;
    end else if (b_valid_i && b_ready_o) begin
      hdr_q  <= 1'b1;
      wcnt_q <= '0;
    end else if (w_valid_i && w_ready_o) begin
      wcnt_q <= wcnt_q + 1'b1;
      if (w_last_i) begin
        hdr_q <= 1'b0;
        wb_q  <= !wb_q;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (b_valid_i && b_ready_o) begin
      bias_q[wb_q] <= b_data_i;
      epi_q[wb_q]  <= b_epilogue_i;
    end
    if (w_valid_i && w_ready_o) begin
      wmem[{wb_q, WordAddrBits'(wcnt_q)}] <= w_data_i;
      if (w_last_i) begin
        words_q[wb_q] <= wcnt_q + 1'b1;
      end
    end
  end

  always_comb begin
    full_set = '0;
    full_set[wb_q] = w_valid_i && w_ready_o && w_last_i;
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      full_q <= '0;
    end else begin
      full_q <= (full_q | full_set) & ~full_clr;
    end
  end

  // ---------------------------------------------------------------- stage 0: accept x, read weights
  logic          adv;  // every stage moves one step
  logic          rb_q;
  logic [WordCountBits-1:0] kcnt_q;
  logic          x_take, row_last;

  assign x_ready_o = unread_q[rb_q] && adv;
  assign x_take = x_valid_i && x_ready_o;
  assign row_last = kcnt_q == words_q[rb_q] - 1'b1;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      rb_q   <= 1'b0;
      kcnt_q <= '0;
    end else if (x_take) begin
      kcnt_q <= row_last ? '0 : kcnt_q + 1'b1;
      if (x_last_i) begin
        rb_q <= !rb_q;
      end
    end
  end

  // A bank stays full until its last row leaves stage 3, but x may read it only once: a short
  // tile in the other bank must not send x back to this bank's weights before they are replaced.
  always_comb begin
    unread_clr = '0;
    unread_clr[rb_q] = x_take && x_last_i;
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      unread_q <= '0;
    end else begin
      unread_q <= (unread_q | full_set) & ~unread_clr;
    end
  end

  // ---------------------------------------------------------------- stage 1: operands
  logic                    v1_q, first1_q, last1_q, tile1_q, bank1_q;
  logic [In*XBits-1:0]     x1_q;
  logic [Out*In*WBits-1:0] w1_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      v1_q <= 1'b0;
    end else if (adv) begin
      v1_q <= x_take;
    end
  end

  always_ff @(posedge clk_i) begin
    if (x_take) begin
      w1_q     <= wmem[{rb_q, WordAddrBits'(kcnt_q)}];
      x1_q     <= x_data_i;
      first1_q <= kcnt_q == '0;
      last1_q  <= row_last;
      tile1_q  <= x_last_i;
      bank1_q  <= rb_q;
    end
  end

  // ---------------------------------------------------------------- stage 2: products
  logic                  v2_q, first2_q, last2_q, tile2_q, bank2_q;
  logic signed [ProductBits-1:0]  prod2_q [Out][In];

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      v2_q <= 1'b0;
    end else if (adv) begin
      v2_q <= v1_q;
    end
  end

  for (genvar o = 0; o < Out; o++) begin : gen_mul_o
    for (genvar i = 0; i < In; i++) begin : gen_mul_i
      logic signed [XBits-1:0] xv;
      logic signed [WBits-1:0] wv;
      assign xv = x1_q[i*XBits +: XBits];
      assign wv = w1_q[(o*In + i)*WBits +: WBits];
      always_ff @(posedge clk_i) begin
        if (adv && v1_q) begin
          prod2_q[o][i] <= ProductBits'(xv) * ProductBits'(wv);
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv && v1_q) begin
      first2_q <= first1_q;
      last2_q  <= last1_q;
      tile2_q  <= tile1_q;
      bank2_q  <= bank1_q;
    end
  end

  // ---------------------------------------------------------------- stage 3: adder tree + accumulator
  logic                   v3_q, tile3_q, bank3_q;
  logic signed [AccBits-1:0] acc_q [Out];

  for (genvar o = 0; o < Out; o++) begin : gen_acc
    logic signed [AccBits-1:0] row_sum;
    always_comb begin
      row_sum = '0;
      for (int i = 0; i < int'(In); i++) begin
        row_sum = row_sum + AccBits'(prod2_q[o][i]);
      end
    end
    always_ff @(posedge clk_i) begin
      if (adv && v2_q) begin
        acc_q[o] <= (first2_q ? '0 : acc_q[o]) + row_sum;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      v3_q <= 1'b0;
    end else if (adv) begin
      v3_q <= v2_q && last2_q;
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv && v2_q) begin
      tile3_q <= tile2_q;
      bank3_q <= bank2_q;
    end
  end

  // the bank's biases are read here for the last time: release it after its last row
  always_comb begin
    full_clr = '0;
    full_clr[bank3_q] = adv && v3_q && tile3_q;
  end

  // ---------------------------------------------------------------- stage 4: bias and cast to act
  logic                     v4_q, tile4_q;
  epilogue_e                epi4_q;
  logic [Out*ActBits-1:0]   e4_q;
  logic [Out*ActBits-1:0]   e3;
  logic [Out*BBits-1:0]     bias3;

  assign bias3 = bias_q[bank3_q];

  for (genvar o = 0; o < Out; o++) begin : gen_bias
    logic signed [SumBits-1:0]    biased;
    logic signed [BBits-1:0] bv;
    assign bv = bias3[o*BBits +: BBits];
    assign biased = (SumBits'(acc_q[o]) <<< (SumFrac - AccFrac)) + (SumBits'(bv) <<< (SumFrac - BFrac));
    fxp_requant #(
      .InBits(SumBits), .InFrac(SumFrac), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_cast (
      .in_i(biased), .out_o(e3[o*ActBits +: ActBits]), .clip_o()
    );
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      v4_q <= 1'b0;
    end else if (adv) begin
      v4_q <= v3_q;
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv && v3_q) begin
      e4_q    <= e3;
      epi4_q  <= epi_q[bank3_q];
      tile4_q <= tile3_q;
    end
  end

  // ---------------------------------------------------------------- GELU lanes
  // the registered GELU lanes take GeluLatency cycles from e4_q; the row's stage-4 values wait
  // beside them, so every epilogue reads one stage (the _g signals)
  logic                         v_g, tile_g;
  logic [$bits(epilogue_e)-1:0] epi_g_bits;
  epilogue_e                    epi_g;
  logic [Out*ActBits-1:0]       e_g, gelu_g;

  valid_pipe #(.Latency(GeluLatency), .SideBits(1 + $bits(epilogue_e) + Out*ActBits)) u_gelu_wait (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(adv),
    .valid_i(v4_q), .side_i({tile4_q, epi4_q, e4_q}), .valid_o(v_g), .side_o({tile_g, epi_g_bits, e_g})
  );
  assign epi_g = epilogue_e'(epi_g_bits);

  for (genvar o = 0; o < Out; o++) begin : gen_gelu
    gelu_lane u_gelu (
      .clk_i(clk_i), .en_i(adv),
      .x_i(e4_q[o*ActBits +: ActBits]),
      .y_o(gelu_g[o*ActBits +: ActBits])
    );
  end

  // ---------------------------------------------------------------- stage 5: epilogue
  logic                   out_free, need_accum;
  logic [Out*ActBits-1:0] y_d, accum4;

  assign out_free = !y_valid_o || y_ready_i;
  assign need_accum = v_g && epi_g == EpilogueExpertAccumulate;
  assign adv = out_free && !(need_accum && !accum_valid_i);
  assign accum_ready_o = out_free && need_accum;

  for (genvar o = 0; o < Out; o++) begin : gen_epilogue
    logic signed [ScaledBits-1:0]      scaled_wide;
    logic signed [ActBits-1:0] ev, rv, scaled;
    logic signed [ActBits:0]   total;
    assign ev = e_g[o*ActBits +: ActBits];
    assign rv = accum_row_i[o*ActBits +: ActBits];
    assign scaled_wide = ScaledBits'(ev) * $signed({1'b0, accum_score_i});
    fxp_requant #(
      .InBits(ScaledBits), .InFrac(ActFracBits + GateScoreFracBits), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_scale (
      .in_i(scaled_wide), .out_o(scaled), .clip_o()
    );
    assign total = (ActBits + 1)'(rv) + (ActBits + 1)'(scaled);
    fxp_requant #(
      .InBits(ActBits + 1), .InFrac(ActFracBits), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_add (
      .in_i(total), .out_o(accum4[o*ActBits +: ActBits]), .clip_o()
    );
  end

  always_comb begin
    unique case (epi_g)
      EpilogueBiasGelu:         y_d = gelu_g;
      EpilogueExpertAccumulate: y_d = accum4;
      EpilogueBias:             y_d = e_g;
      default:                  y_d = e_g;
    endcase
  end

  // A beat taken while the pipeline waits for its accum beat leaves the output empty, not repeated.
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      y_valid_o <= 1'b0;
    end else if (adv) begin
      y_valid_o <= v_g;
    end else if (y_ready_i) begin
      y_valid_o <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv && v_g) begin
      y_data_o <= y_d;
      y_last_o <= tile_g;
    end
  end

`ifndef SYNTHESIS
  // stream rules and tile bookkeeping, checked in simulation
  always_ff @(posedge clk_i) begin
    if (!rst_i) begin
      if (x_take && x_last_i && !row_last) begin
        $error("%m: x_last_i on beat %0d of a %0d-beat row", kcnt_q, words_q[rb_q]);
      end
      if (w_valid_i && w_ready_o && !w_last_i && wcnt_q == WordCountBits'(BankWords - 1)) begin
        $error("%m: a tile of more than %0d weight words (MaxK %0d / In %0d)", BankWords, MaxK, In);
      end
      if (b_valid_i && b_ready_o
          && !(b_epilogue_i inside {EpilogueBias, EpilogueBiasGelu, EpilogueExpertAccumulate})) begin
        $error("%m: epilogue code %0d is not defined", b_epilogue_i);
      end
    end
  end
`endif

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Out*BBits + $bits(epilogue_e))) u_b_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(b_valid_i), .ready_i(b_ready_o), .data_i({b_epilogue_i, b_data_i})
  );
  stream_check #(.Width(Out*In*WBits + 1)) u_w_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(w_valid_i), .ready_i(w_ready_o), .data_i({w_last_i, w_data_i})
  );
  stream_check #(.Width(In*XBits + 1)) u_x_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(x_valid_i), .ready_i(x_ready_o), .data_i({x_last_i, x_data_i})
  );
  stream_check #(.Width(GateScoreBits + Out*ActBits)) u_accum_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(accum_valid_i), .ready_i(accum_ready_o),
    .data_i({accum_score_i, accum_row_i})
  );
`endif
endmodule

`default_nettype wire
