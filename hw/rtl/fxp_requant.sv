// Fixed-point narrowing cast: drop (or append) fraction bits with the named rounding, then
// bring the value into the output format by saturation or wrap-around. The RTL twin of
// edgemoe.golden.fixed.core.requantize (ap_fixed's AP_TRN/AP_RND with AP_SAT/AP_WRAP).
//
// Parameters:
//   InBits, InFrac, InSigned     raw input: InBits wide, InFrac fraction bits.
//   OutBits, OutFrac, OutSigned  raw output format.
//   RoundHalfUp                  1: add half an output LSB before truncating; 0: truncate (-inf).
//   Saturate                     1: clip to the output range; 0: keep the low OutBits (wrap).
`default_nettype none

module fxp_requant #(
  parameter int unsigned InBits      = 32,
  parameter int          InFrac      = 0,
  parameter bit          InSigned    = 1'b1,
  parameter int unsigned OutBits     = 16,
  parameter int          OutFrac     = 0,
  parameter bit          OutSigned   = 1'b1,
  parameter bit          RoundHalfUp = 1'b1,
  parameter bit          Saturate    = 1'b1
) (
  input  wire logic [InBits-1:0]  in_i,
  output logic      [OutBits-1:0] out_o,
  output logic                    clip_o  // the value did not fit (saturated or wrapped)
);
  localparam int Shift = InFrac - OutFrac;
  localparam int LeftShift = Shift < 0 ? -Shift : 0;
  // wide enough for the shifted input plus the rounding carry, and for the output range, signed
  localparam int InWorkBits = int'(InBits) + 2 + LeftShift;
  localparam int OutWorkBits = int'(OutBits) + 2;
  localparam int WorkBits = InWorkBits > OutWorkBits ? InWorkBits : OutWorkBits;

  localparam logic signed [WorkBits-1:0] OutMax = OutSigned ? (WorkBits'(1) <<< (OutBits - 1)) - WorkBits'(1)
                                                            : (WorkBits'(1) <<< OutBits) - WorkBits'(1);
  localparam logic signed [WorkBits-1:0] OutMin = OutSigned ? -(WorkBits'(1) <<< (OutBits - 1)) : '0;

  if (InBits < 1 || OutBits < 1 || (OutSigned && OutBits < 2)) begin : gen_bad_widths
    $fatal(1, "%m: fxp_requant needs InBits >= 1 and OutBits >= 1 (2 if signed), got %0d -> %0d",
           InBits, OutBits);
  end

  logic signed [WorkBits-1:0] extended;
  logic signed [WorkBits-1:0] scaled;
  logic                       fits;

  assign extended = {{(WorkBits - int'(InBits)){InSigned & in_i[InBits-1]}}, in_i};

  if (Shift > 0) begin : gen_right
    localparam logic signed [WorkBits-1:0] Half = RoundHalfUp ? (WorkBits'(1) <<< (Shift - 1)) : '0;
    assign scaled = (extended + Half) >>> Shift;
  end else begin : gen_left
    assign scaled = extended <<< LeftShift;
  end

  // it fits when the bits above the output's are all copies of the output's sign bit (signed)
  // or all zero (unsigned): two reductions, no comparison through a carry chain
  localparam int TopBit = OutSigned ? int'(OutBits) - 1 : int'(OutBits);
  logic [WorkBits-TopBit-1:0] top;
  assign top = scaled[WorkBits-1:TopBit];
  assign fits = !(|top) || (OutSigned && &top);

  always_comb begin
    out_o  = scaled[OutBits-1:0];
    clip_o = !fits;
    if (Saturate && !fits) begin
      out_o = scaled[WorkBits-1] ? OutMin[OutBits-1:0] : OutMax[OutBits-1:0];
    end
  end
endmodule

`default_nettype wire
