// GELU of one activation: GELU(x) = ReLU(x) - delta(|x|), delta from the interpolated
// GeluDeltaTable over |x| < 2**GeluRangeLog2 and 0 beyond. Follows
// edgemoe.golden.fixed.nonlinear.gelu step by step (same widths, roundings and overflow):
//   a = |x|; beyond = a >= 2**(AF + g); i = a >> RB, r = a mod 2**RB (RB = AF + g - b);
//   d = fit(G[i] + cast((G[i+1] - G[i]) * r, RB, delta), delta); d = 0 where beyond;
//   y = cast((max(x, 0) << (F - AF)) - (d << (F - DF)), F - AF, act), F = max(AF, DF).
// (AF = ActFracBits, DF = GeluDeltaFracBits, g = GeluRangeLog2, b = GeluTableBits.) One
// register per step (the multiply in fxp_mul), y_o from a register, fxp_func_pkg::GeluLatency
// enabled cycles after x_i; en_i low holds every stage.
`default_nettype none

module gelu_lane
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
(
  input  wire logic               clk_i,
  input  wire logic               en_i,
  input  wire logic [ActBits-1:0] x_i,
  output logic      [ActBits-1:0] y_o
);
  localparam int RangeFrac = ActFracBits + GeluRangeLog2;  // a < 2**RangeFrac raw: inside the table
  localparam int InterpBits = RangeFrac - int'(GeluTableBits);  // bits of the interpolation fraction r
  localparam int InterpWidth = InterpBits > 0 ? InterpBits : 1;  // r's signal width (r = 0 when none)
  localparam int WorkFrac = ActFracBits > GeluDeltaFracBits ? ActFracBits : GeluDeltaFracBits;
  localparam int EntryBits = GeluDeltaTableWidth;  // table entry width (unsigned)
  localparam int StepBits = EntryBits + InterpWidth + 2;  // (G[i+1] - G[i]) * r, signed
  localparam int ReluBits = int'(ActBits) + WorkFrac - ActFracBits;  // max(x, 0) at WorkFrac fraction bits
  localparam int DeltaWideBits = int'(GeluDeltaBits) + WorkFrac - GeluDeltaFracBits;  // delta there
  localparam int WideBits = (ReluBits > DeltaWideBits ? ReluBits : DeltaWideBits) + 2;

  if (RangeFrac < 0 || RangeFrac > int'(ActBits) - 1 || GeluTableBits < 1) begin : gen_bad_range
    $fatal(1, "%m: gelu_lane needs 0 <= ActFracBits + GeluRangeLog2 <= ActBits - 1 (got %0d)", RangeFrac);
  end
  if (GeluDeltaTableSize != (1 << GeluTableBits) + 1) begin : gen_bad_table
    $fatal(1, "%m: GeluDeltaTable has %0d entries, expected 2**GeluTableBits + 1", GeluDeltaTableSize);
  end

  // ---- a = |x|
  logic [ActBits-1:0] x_a, a_q;
  pipe_reg #(.Width(2 * ActBits), .Depth(1)) u_abs (
    .clk_i(clk_i), .en_i(en_i), .d_i({x_i, x_i[ActBits-1] ? ActBits'(-x_i) : x_i}), .q_o({x_a, a_q})
  );

  // ---- beyond the table; index and fraction; the two entries read from a registered ROM (the
  // rest beside it), then registered once more. The index is a's bits straight from the
  // register: beyond the table it reads some segment (every b-bit index has its two entries) whose
  // delta is then replaced by 0, so the range test runs beside the read, not before it
  logic                     beyond_d;
  logic [GeluTableBits-1:0] idx;
  logic [InterpWidth-1:0]   r_d;
  assign beyond_d = a_q >= ActBits'(1) << RangeFrac;

  if (InterpBits > 0) begin : gen_interp
    logic [ActBits-InterpBits-1:0] idx_full;
    assign idx_full = a_q[ActBits-1:InterpBits];
    assign idx = idx_full[GeluTableBits-1:0];
    assign r_d = a_q[InterpBits-1:0];
    // verilator lint_off UNUSEDSIGNAL
    logic unused_hi;  // idx_full above bit GeluTableBits only matters through `beyond`
    assign unused_hi = ^idx_full;
    // verilator lint_on UNUSEDSIGNAL
  end else begin : gen_no_interp
    assign idx = GeluTableBits'(a_q << (-InterpBits));
    assign r_d = '0;
  end

  logic [EntryBits-1:0]   lo_t, hi_t, lo_q, hi_q, lo_m, lo_s;
  logic [InterpWidth-1:0] r_t, r_q;
  logic                   beyond_t, beyond_q, beyond_m, beyond_s;
  logic [ActBits-1:0]     x_t, x_r, x_m, x_s, x_d;
  rom_pair #(
    .Entries(GeluDeltaTableSize), .EntryBits(EntryBits), .IndexBits(GeluTableBits), .Table(GeluDeltaTable)
  ) u_table (
    .clk_i(clk_i), .en_i(en_i), .idx_i(idx), .lo_o(lo_t), .hi_o(hi_t)
  );
  pipe_reg #(.Width(InterpWidth + 1 + ActBits), .Depth(1)) u_table_side (
    .clk_i(clk_i), .en_i(en_i), .d_i({r_d, beyond_d, x_a}), .q_o({r_t, beyond_t, x_t})
  );
  pipe_reg #(.Width(2 * EntryBits + InterpWidth + 1 + ActBits), .Depth(1)) u_entries (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_t, hi_t, r_t, beyond_t, x_t}), .q_o({lo_q, hi_q, r_q, beyond_q, x_r})
  );

  // ---- (G[i+1] - G[i]) * r, then its cast to the delta's lsb
  logic signed [StepBits-1:0] prod;
  logic [EntryBits+1:0]       step_d, step_q;  // cast((hi - lo) * r, RB, delta), signed
  fxp_mul #(.ABits(EntryBits + 1), .BBits(InterpWidth + 1)) u_mul_interp (
    .clk_i(clk_i), .en_i(en_i),
    .a_i((EntryBits + 1)'(hi_q) - (EntryBits + 1)'(lo_q)), .b_i($signed({1'b0, r_q})), .p_o(prod)
  );
  pipe_reg #(.Width(EntryBits + 1 + ActBits), .Depth(MulLatency)) u_interp_side (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_q, beyond_q, x_r}), .q_o({lo_m, beyond_m, x_m})
  );

  if (InterpBits > 0) begin : gen_step
    fxp_requant #(
      .InBits(StepBits), .InFrac(InterpBits), .InSigned(1'b1),
      .OutBits(EntryBits + 2), .OutFrac(0), .OutSigned(1'b1),
      .RoundHalfUp(GeluDeltaRoundHalfUp), .Saturate(1'b1)
    ) u_step (
      .in_i(prod), .out_o(step_d), .clip_o()
    );
  end else begin : gen_no_step
    assign step_d = '0;
    logic unused_prod;  // no fraction: the table is read without interpolation
    assign unused_prod = ^prod;
  end
  pipe_reg #(.Width(2 * EntryBits + 3 + ActBits), .Depth(1)) u_step_reg (
    .clk_i(clk_i), .en_i(en_i), .d_i({step_d, lo_m, beyond_m, x_m}), .q_o({step_q, lo_s, beyond_s, x_s})
  );

  // ---- delta = fit(lo + step), 0 beyond the table
  logic signed [EntryBits+2:0] d_sum;
  logic [GeluDeltaBits-1:0]    d_fit, d_d, d_q;
  assign d_sum = (EntryBits + 3)'(lo_s) + (EntryBits + 3)'($signed(step_q));
  fxp_requant #(
    .InBits(EntryBits + 3), .InFrac(0), .InSigned(1'b1),
    .OutBits(GeluDeltaBits), .OutFrac(0), .OutSigned(GeluDeltaSigned),
    .RoundHalfUp(GeluDeltaRoundHalfUp), .Saturate(GeluDeltaSaturate)
  ) u_delta (
    .in_i(d_sum), .out_o(d_fit), .clip_o()
  );
  assign d_d = beyond_s ? '0 : d_fit;
  pipe_reg #(.Width(GeluDeltaBits + ActBits), .Depth(1)) u_delta_reg (
    .clk_i(clk_i), .en_i(en_i), .d_i({d_d, x_s}), .q_o({d_q, x_d})
  );

  // ---- ReLU(x) - delta at WorkFrac fraction bits, then the cast to the activation
  logic signed [WideBits-1:0] y_wide_d, y_wide_q;
  logic [ActBits-1:0]         y_d;
  assign y_wide_d = (x_d[ActBits-1] ? '0 : (WideBits'(x_d) <<< (WorkFrac - ActFracBits)))
                  - (WideBits'({1'b0, d_q}) <<< (WorkFrac - GeluDeltaFracBits));
  pipe_reg #(.Width(WideBits), .Depth(1)) u_wide (
    .clk_i(clk_i), .en_i(en_i), .d_i(y_wide_d), .q_o(y_wide_q)
  );

  fxp_requant #(
    .InBits(WideBits), .InFrac(WorkFrac), .InSigned(1'b1),
    .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
    .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
  ) u_out (
    .in_i(y_wide_q), .out_o(y_d), .clip_o()
  );
  pipe_reg #(.Width(ActBits), .Depth(1)) u_out_reg (.clk_i(clk_i), .en_i(en_i), .d_i(y_d), .q_o(y_o));
endmodule

`default_nettype wire
