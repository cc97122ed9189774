// One step of a running top-k selection, combinational: inserts the candidate (score, index)
// into a list of up to TopK entries kept best first, and drops what falls off the end.
// Candidates arrive in ascending index order and only a strictly greater score moves ahead of
// an entry, so equal scores keep the lower index first: the order of
// edgemoe.golden.fixed.moe.top_k (a stable sort on the negated raw scores).
`default_nettype none

module topk_insert #(
  parameter int unsigned TopK        = 2,
  parameter int unsigned ScoreBits   = 18,
  parameter bit          ScoreSigned = 1'b0,
  parameter int unsigned IndexBits   = 2
) (
  input  wire logic [TopK-1:0]                valid_i,  // entries in use (a prefix of the list)
  input  wire logic [TopK*ScoreBits-1:0]      score_i,  // entry 0 in the low bits
  input  wire logic [TopK*IndexBits-1:0]      index_i,
  input  wire logic [ScoreBits-1:0]           cand_score_i,
  input  wire logic [IndexBits-1:0]           cand_index_i,
  output logic      [TopK-1:0]                valid_o,
  output logic      [TopK*ScoreBits-1:0]      score_o,
  output logic      [TopK*IndexBits-1:0]      index_o
);
  if (TopK < 1 || ScoreBits < 1 || IndexBits < 1) begin : gen_bad_params
    $fatal(1, "%m: topk_insert needs TopK, ScoreBits and IndexBits >= 1, got %0d, %0d, %0d",
           TopK, ScoreBits, IndexBits);
  end

  logic signed [ScoreBits:0] cand;
  logic [TopK-1:0]           ahead;  // the candidate goes ahead of entry i (a suffix of the list)

  assign cand = {ScoreSigned & cand_score_i[ScoreBits-1], cand_score_i};

  for (genvar i = 0; i < TopK; i++) begin : gen_entry
    logic signed [ScoreBits:0] entry;
    assign entry = {ScoreSigned & score_i[i*ScoreBits+ScoreBits-1], score_i[i*ScoreBits +: ScoreBits]};
    assign ahead[i] = !valid_i[i] || (cand > entry);

    if (i == 0) begin : gen_head
      always_comb begin
        valid_o[0] = 1'b1;
        score_o[0 +: ScoreBits] = ahead[0] ? cand_score_i : score_i[0 +: ScoreBits];
        index_o[0 +: IndexBits] = ahead[0] ? cand_index_i : index_i[0 +: IndexBits];
      end
    end else begin : gen_tail
      // ahead of entry i: take the candidate if it is not ahead of i - 1, else shift i - 1 down
      always_comb begin
        valid_o[i] = valid_i[i];
        score_o[i*ScoreBits +: ScoreBits] = score_i[i*ScoreBits +: ScoreBits];
        index_o[i*IndexBits +: IndexBits] = index_i[i*IndexBits +: IndexBits];
        if (ahead[i]) begin
          valid_o[i] = ahead[i-1] ? valid_i[i-1] : 1'b1;
          score_o[i*ScoreBits +: ScoreBits] = ahead[i-1] ? score_i[(i-1)*ScoreBits +: ScoreBits]
                                                         : cand_score_i;
          index_o[i*IndexBits +: IndexBits] = ahead[i-1] ? index_i[(i-1)*IndexBits +: IndexBits]
                                                         : cand_index_i;
        end
      end
    end
  end
endmodule

`default_nettype wire
