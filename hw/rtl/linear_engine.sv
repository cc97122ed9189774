// The unified compute unit with its weight fetch: one linear_unit whose tile headers and weight
// words are read from the packed weight image (host/layout.py) through an AXI4 read master.
//
// A layer command names a weight item (byte address of item 0 of its tiled segment plus the
// item's offset), its bias item (or none), the number of output tiles, the weight words per tile
// (stored input columns / In), the epilogue and the order of the tiles (tile_order: storage
// order, or head by head for the q | k | v layer). Per output tile t, in that order, the engine reads
//   the tile's Out biases: the beat(s) holding words t*Out .. t*Out+Out-1 of the bias vector, and
//   the tile's weights: Words words of Out x In storage words, contiguous in the image
//   (tiles [out/Out][in/In][Out][In]), WordBeats beats each,
// and hands them to linear_unit as the header (b) and weight (w) streams; while the unit computes
// one tile the next one loads (its double-buffered banks). The caller streams the activation rows
// on x once per output tile (x_last_i on the tile's last beat) and takes one y beat per row; for
// ExpertAccumulate it also supplies the accum stream (see linear_unit).
//
// One MAC array serves every layer: weights and biases enter it in a format that holds both of
// their storage formats exactly (UnifiedWeightFrac = the larger fraction, integer bits the larger of the
// two), so the patch embedding (patch_weight, pixels given as act by the caller) and the q/k/v and
// projection layers (attn_bias) run on the same datapath with exactly the golden sums.
// The m_axi_* ports keep the AXI signal names so that bus models bind to them by name.
`default_nettype none

module linear_engine
  import edgemoe_pkg::*;
#(
  parameter int unsigned In             = LinearIn,
  parameter int unsigned Out            = LinearOut,
  parameter int unsigned AddrBits       = 64,
  parameter int unsigned MaxBurst       = 64,
  parameter int unsigned MaxOutstanding = 4,
  // longest input row: the patch embedding's or the widest hidden layer's
  parameter int unsigned MaxK =
    (PatchIn > Dim ? PatchIn : Dim) > (MlpHidden > ExpertHidden ? MlpHidden : ExpertHidden)
      ? (PatchIn > Dim ? PatchIn : Dim) : (MlpHidden > ExpertHidden ? MlpHidden : ExpertHidden),
  localparam int unsigned CountBits = 16
) (
  input  wire logic                         clk_i,
  input  wire logic                         rst_i,
  // layers
  input  wire logic                         cmd_valid_i,
  output logic                              cmd_ready_o,
  input  wire logic [AddrBits-1:0]          cmd_weights_i,   // byte address of the weight item
  input  wire logic [AddrBits-1:0]          cmd_bias_i,      // byte address of the bias item
  input  wire logic [CountBits-1:0]         cmd_tiles_i,     // output tiles
  input  wire logic [CountBits-1:0]         cmd_words_i,     // weight words per tile (K / In)
  input  wire logic                         cmd_patch_i,     // weights in patch_weight (else linear_weight)
  input  wire bias_kind_e                   cmd_bias_kind_i, // the bias format, or none
  input  wire epilogue_e                    cmd_epilogue_i,  // linear_unit's epilogue
  input  wire logic                         cmd_head_major_i, // q | k | v tiles head by head (tile_order)
  // activation rows, once per output tile
  input  wire logic                         x_valid_i,
  output logic                              x_ready_o,
  input  wire logic [In*ActBits-1:0]        x_data_i,
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
  output logic                              y_last_o,
  // busy cycles of the MAC array's input (an x beat taken); cycles the weight fetch waits on memory
  output logic                              mac_busy_o,
  output logic                              mem_wait_o,
  // AXI4 read channels (the weight image)
  output logic      [0:0]                   m_axi_arid,
  output logic      [AddrBits-1:0]          m_axi_araddr,
  output logic      [7:0]                   m_axi_arlen,
  output logic      [2:0]                   m_axi_arsize,
  output logic      [1:0]                   m_axi_arburst,
  output logic      [3:0]                   m_axi_arcache,
  output logic      [2:0]                   m_axi_arprot,
  output logic                              m_axi_arvalid,
  input  wire logic                         m_axi_arready,
  input  wire logic [0:0]                   m_axi_rid,
  input  wire logic [AxiBits-1:0]           m_axi_rdata,
  input  wire logic [1:0]                   m_axi_rresp,
  input  wire logic                         m_axi_rlast,
  input  wire logic                         m_axi_rvalid,
  output logic                              m_axi_rready
);
  // storage words of the image (host/layout.py word_bits)
  function automatic int unsigned word_bits(int unsigned bits);
    return bits <= 8 ? 8 : bits <= 16 ? 16 : bits <= 32 ? 32 : 64;
  endfunction
  function automatic int max2(int a, int b);
    return a > b ? a : b;
  endfunction

  localparam int unsigned WeightWordBits = word_bits(LinearWeightBits);
  localparam int unsigned BiasWordBits = word_bits(BiasBits);
  localparam int UnifiedWeightFrac = max2(LinearWeightFracBits, PatchWeightFracBits);
  localparam int unsigned UnifiedWeightBits =
    max2(LinearWeightIntBits, PatchWeightIntBits) + UnifiedWeightFrac;
  localparam int UnifiedBiasFrac = max2(BiasFracBits, AttnBiasFracBits);
  localparam int unsigned UnifiedBiasBits = max2(BiasIntBits, AttnBiasIntBits) + UnifiedBiasFrac;
  localparam int unsigned WordBits = Out * In * WeightWordBits;  // one tile column of weights
  localparam int unsigned WordBeats = WordBits / AxiBits;
  localparam int unsigned TileBiasBits = Out * BiasWordBits;
  localparam int unsigned BiasBeats = TileBiasBits > AxiBits ? TileBiasBits / AxiBits : 1;
  localparam int unsigned BiasBufBits = BiasBeats * AxiBits;
  localparam int unsigned BeatBytes = AxiBits / 8;

  if (word_bits(PatchWeightBits) != WeightWordBits
      || word_bits(AttnBiasBits) != BiasWordBits) begin : gen_bad_words
    $fatal(1, "%m: linear_engine needs patch and linear weights (and bias and attn_bias) %s",
           "in storage words of one width");
  end
  if (WordBits % AxiBits != 0) begin : gen_bad_axi_weights
    $fatal(1, "%m: linear_engine needs a weight tile column (%0d bits) of whole AXI beats (%0d bits)",
           WordBits, AxiBits);
  end
  if (TileBiasBits % AxiBits != 0 && AxiBits % TileBiasBits != 0) begin : gen_bad_axi_biases
    $fatal(1, "%m: linear_engine needs a tile's biases (%0d bits) in whole AXI beats (%0d bits) %s",
           TileBiasBits, AxiBits, "or a whole fraction of one");
  end
  if (LinearWeightSigned == 0 || PatchWeightSigned == 0
      || BiasSigned == 0 || AttnBiasSigned == 0) begin : gen_bad_sign
    $fatal(1, "%m: linear_engine expects signed weight and bias formats");
  end

  typedef logic [CountBits-1:0] count_t;

  // ---------------------------------------------------------------- the read master
  logic                 rd_cmd_valid, rd_cmd_ready;
  logic [AddrBits-1:0]  rd_cmd_addr;
  logic [31:0]          rd_cmd_beats;
  logic                 rd_valid, rd_ready, rd_last;
  logic [AxiBits-1:0]   rd_data;

  axi_burst_reader #(
    .AddrBits      (AddrBits),
    .DataBits      (AxiBits),
    .MaxBurst      (MaxBurst),
    .MaxOutstanding(MaxOutstanding)
  ) u_reader (
    .clk_i        (clk_i),
    .rst_i        (rst_i),
    .cmd_valid_i  (rd_cmd_valid),
    .cmd_ready_o  (rd_cmd_ready),
    .cmd_addr_i   (rd_cmd_addr),
    .cmd_beats_i  (rd_cmd_beats),
    .d_valid_o    (rd_valid),
    .d_ready_i    (rd_ready),
    .d_data_o     (rd_data),
    .d_last_o     (rd_last),
    .error_o      (),
    .m_axi_arid   (m_axi_arid),
    .m_axi_araddr (m_axi_araddr),
    .m_axi_arlen  (m_axi_arlen),
    .m_axi_arsize (m_axi_arsize),
    .m_axi_arburst(m_axi_arburst),
    .m_axi_arcache(m_axi_arcache),
    .m_axi_arprot (m_axi_arprot),
    .m_axi_arvalid(m_axi_arvalid),
    .m_axi_arready(m_axi_arready),
    .m_axi_rid    (m_axi_rid),
    .m_axi_rdata  (m_axi_rdata),
    .m_axi_rresp  (m_axi_rresp),
    .m_axi_rlast  (m_axi_rlast),
    .m_axi_rvalid (m_axi_rvalid),
    .m_axi_rready (m_axi_rready)
  );

  // ---------------------------------------------------------------- fetch sequencer
  typedef enum logic [1:0] {Idle, Bias, Weights} phase_e;
  phase_e              phase_q;
  logic                issued_q;  // the read of the current phase has been requested
  logic [AddrBits-1:0] weights_q, bias_q;
  count_t              tiles_q, words_q, tile_q, word_q;
  logic                patch_q;
  count_t              stored_tile;  // the storage index of the tile being read
  bias_kind_e          bias_kind_q;
  epilogue_e           epilogue_q;
  logic                b_valid, b_ready, w_valid, w_ready;
  logic                bias_full_q;        // the tile's bias beats are in
  logic [BiasBufBits-1:0] bias_buf_q;
  logic [$clog2(BiasBeats + 1)-1:0] bias_cnt_q;
  logic [WordBits-1:0] word_buf_q;
  logic [$clog2(WordBeats + 1)-1:0] beat_cnt_q;
  logic                word_full_q;

  localparam int unsigned BiasLanes = BiasBufBits / TileBiasBits;  // tiles' biases per read
  localparam int unsigned BiasLaneBits = BiasLanes > 1 ? $clog2(BiasLanes) : 1;

  assign cmd_ready_o = phase_q == Idle;

  logic tile_done;  // the tile's last weight word is handed over: the next tile
  assign tile_done = phase_q == Weights && w_valid && w_ready && word_q == words_q - 1'b1;
  tile_order #(.Out(Out), .CountBits(CountBits)) u_order (
    .clk_i       (clk_i),
    .start_i     (phase_q == Idle && cmd_valid_i),
    .head_major_i(cmd_head_major_i),
    .advance_i   (tile_done),
    .tile_o      (stored_tile)
  );

  // the bias read of tile t starts at the beat holding its first word
  logic [AddrBits-1:0] bias_addr, weight_addr;
  assign bias_addr = bias_q + AddrBits'((64'(stored_tile) * TileBiasBits) / AxiBits) * AddrBits'(BeatBytes);
  assign weight_addr = weights_q + AddrBits'(64'(stored_tile) * 64'(words_q) * 64'(WordBits / 8));

  always_comb begin
    rd_cmd_valid = !issued_q && (phase_q == Weights || (phase_q == Bias && bias_kind_q != BiasKindNone));
    rd_cmd_addr  = phase_q == Weights ? weight_addr : bias_addr;
    rd_cmd_beats = phase_q == Weights ? 32'(words_q) * WordBeats : BiasBeats;
  end

  // read data goes to the bias buffer (Bias phase) or the weight word gatherer (Weights phase)
  assign rd_ready = phase_q == Bias ? !bias_full_q : (phase_q == Weights && (!word_full_q || w_ready));

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      phase_q     <= Idle;
      issued_q    <= 1'b0;
      bias_full_q <= 1'b0;
      bias_cnt_q  <= '0;
      beat_cnt_q  <= '0;
      word_full_q <= 1'b0;
      tile_q      <= '0;
      word_q      <= '0;
    end else begin
      if (rd_cmd_valid && rd_cmd_ready) issued_q <= 1'b1;
      unique case (phase_q)
        Idle: begin
          if (cmd_valid_i) begin
            phase_q  <= cmd_tiles_i != '0 ? Bias : Idle;
            issued_q <= 1'b0;
            tile_q   <= '0;
          end
        end
        Bias: begin
          if (rd_valid && rd_ready) begin
            bias_cnt_q <= bias_cnt_q + 1'b1;
            if (rd_last) bias_full_q <= 1'b1;
          end
          if (b_valid && b_ready) begin
            phase_q     <= Weights;
            issued_q    <= 1'b0;
            bias_full_q <= 1'b0;
            bias_cnt_q  <= '0;
            word_q      <= '0;
          end
        end
        Weights: begin
          if (w_valid && w_ready) begin
            word_full_q <= 1'b0;
            word_q      <= word_q + 1'b1;
          end
          if (rd_valid && rd_ready) begin
            beat_cnt_q <= beat_cnt_q == ($clog2(WordBeats + 1))'(WordBeats - 1) ? '0 : beat_cnt_q + 1'b1;
            if (beat_cnt_q == ($clog2(WordBeats + 1))'(WordBeats - 1)) word_full_q <= 1'b1;
          end
          if (tile_done) begin
            issued_q <= 1'b0;
            tile_q   <= tile_q + 1'b1;
            phase_q  <= tile_q == tiles_q - 1'b1 ? Idle : Bias;
          end
        end
        default: phase_q <= Idle;
      endcase
    end
  end

  always_ff @(posedge clk_i) begin
    if (phase_q == Idle && cmd_valid_i) begin
      weights_q   <= cmd_weights_i;
      bias_q      <= cmd_bias_i;
      tiles_q     <= cmd_tiles_i;
      words_q     <= cmd_words_i;
      patch_q     <= cmd_patch_i;
      bias_kind_q <= cmd_bias_kind_i;
      epilogue_q  <= cmd_epilogue_i;
    end
  end

  // beats enter at the top and move down: after the last one, beat 0 sits in the low bits
  logic bias_take, weight_take;
  assign bias_take = phase_q == Bias && rd_valid && rd_ready;
  assign weight_take = phase_q == Weights && rd_valid && rd_ready;
  if (BiasBeats > 1) begin : gen_bias_shift
    always_ff @(posedge clk_i) begin
      if (bias_take) bias_buf_q <= {rd_data, bias_buf_q[BiasBufBits-1:AxiBits]};
    end
  end else begin : gen_bias_beat
    always_ff @(posedge clk_i) begin
      if (bias_take) bias_buf_q <= rd_data;
    end
  end
  if (WordBeats > 1) begin : gen_word_shift
    always_ff @(posedge clk_i) begin
      if (weight_take) word_buf_q <= {rd_data, word_buf_q[WordBits-1:AxiBits]};
    end
  end else begin : gen_word_beat
    always_ff @(posedge clk_i) begin
      if (weight_take) word_buf_q <= rd_data;
    end
  end

  // ---------------------------------------------------------------- header and weight words
  logic [TileBiasBits-1:0] tile_bias;
  logic [Out*UnifiedBiasBits-1:0]   b_data;
  logic [Out*In*UnifiedWeightBits-1:0] w_data;
  logic [BiasLaneBits-1:0] bias_lane;

  assign bias_lane = BiasLaneBits'(stored_tile % BiasLanes);
  assign tile_bias = bias_buf_q[32'(bias_lane) * TileBiasBits +: TileBiasBits];

  for (genvar o = 0; o < Out; o++) begin : gen_bias
    logic signed [BiasBits-1:0]     b_plain;
    logic signed [AttnBiasBits-1:0] b_attn;
    logic [UnifiedBiasBits-1:0]     b_unified;
    assign b_data[o*UnifiedBiasBits +: UnifiedBiasBits] = b_unified;
    assign b_plain = tile_bias[o*BiasWordBits +: BiasBits];
    assign b_attn = tile_bias[o*BiasWordBits +: AttnBiasBits];
    always_comb begin
      unique case (bias_kind_q)
        BiasKindBias:     b_unified = UnifiedBiasBits'(b_plain) << (UnifiedBiasFrac - BiasFracBits);
        BiasKindAttnBias: b_unified = UnifiedBiasBits'(b_attn) << (UnifiedBiasFrac - AttnBiasFracBits);
        default:          b_unified = '0;  // BiasKindNone
      endcase
    end
  end

  for (genvar k = 0; k < Out * In; k++) begin : gen_weight
    logic signed [LinearWeightBits-1:0] w_linear;
    logic signed [PatchWeightBits-1:0]  w_patch;
    assign w_linear = word_buf_q[k*WeightWordBits +: LinearWeightBits];
    assign w_patch = word_buf_q[k*WeightWordBits +: PatchWeightBits];
    assign w_data[k*UnifiedWeightBits +: UnifiedWeightBits] =
      patch_q ? UnifiedWeightBits'(w_patch) << (UnifiedWeightFrac - PatchWeightFracBits)
              : UnifiedWeightBits'(w_linear) << (UnifiedWeightFrac - LinearWeightFracBits);
  end

  assign b_valid = phase_q == Bias && (bias_kind_q == BiasKindNone || bias_full_q);
  assign w_valid = phase_q == Weights && word_full_q;

  linear_unit #(
    .In   (In),
    .Out  (Out),
    .XBits(ActBits),
    .XFrac(ActFracBits),
    .WBits(UnifiedWeightBits),
    .WFrac(UnifiedWeightFrac),
    .BBits(UnifiedBiasBits),
    .BFrac(UnifiedBiasFrac),
    .MaxK (MaxK)
  ) u_linear (
    .clk_i       (clk_i),
    .rst_i       (rst_i),
    .b_valid_i   (b_valid),
    .b_ready_o   (b_ready),
    .b_data_i    (b_data),
    .b_epilogue_i(epilogue_q),
    .w_valid_i   (w_valid),
    .w_ready_o   (w_ready),
    .w_data_i    (w_data),
    .w_last_i    (word_q == words_q - 1'b1),
    .x_valid_i   (x_valid_i),
    .x_ready_o   (x_ready_o),
    .x_data_i    (x_data_i),
    .x_last_i    (x_last_i),
    .accum_valid_i   (accum_valid_i),
    .accum_ready_o   (accum_ready_o),
    .accum_score_i   (accum_score_i),
    .accum_row_i    (accum_row_i),
    .y_valid_o   (y_valid_o),
    .y_ready_i   (y_ready_i),
    .y_data_o    (y_data_o),
    .y_last_o    (y_last_o)
  );

  assign mac_busy_o = x_valid_i && x_ready_o;
  assign mem_wait_o = issued_q && phase_q != Idle && rd_ready && !rd_valid;

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i && phase_q == Idle && cmd_valid_i && 32'(cmd_words_i) * In > MaxK) begin
      $error("%m: a layer of %0d weight words per tile; the banks hold %0d (MaxK %0d / In %0d)",
             cmd_words_i, MaxK / In, MaxK, In);
    end
    if (!rst_i && rd_valid && rd_ready && phase_q == Bias
        && bias_cnt_q >= ($clog2(BiasBeats + 1))'(BiasBeats)) begin
      $error("%m: more bias beats than a tile needs");
    end
  end
`endif
endmodule

`default_nettype wire
