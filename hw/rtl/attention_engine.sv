// Multi-head attention of one block: attention_unit run over every head and every group of P
// queries, its q, k and v streams read from the token buffer of q | k | v rows and its output
// rows written into a token buffer of Dim activations per token.
//
// Buffers hold one token after the other in words of Lanes activations (word w of token t at
// t * Words + w): the q | k | v buffer 3 * Dim / Lanes words per token, the output Dim / Lanes.
// Head h is on dimensions h * HeadDim .. (h + 1) * HeadDim - 1 of each third. The read port has
// one cycle of latency (a synchronous RAM); a two-entry buffer keeps one beat per cycle under
// back-pressure. Per (head, group g): the P query rows g * P + j (zeros for the empty slots of
// a partial last group), then the key rows (r mod N) for r = 0 .. N + P - 2, then the value
// rows in the same order (attention_unit's stream order); the unit's P output rows are gathered
// into whole words and written (the empty slots' rows are dropped). done_o pulses after the
// last output word of the last head. The engine may start before its input is complete: it
// reads head h only once heads_ready_i > h (the q | k | v pass writes its tiles head by head).
`default_nettype none

module attention_engine
  import edgemoe_pkg::*;
#(
  parameter int unsigned Lanes = LinearIn,
  localparam int unsigned QkvWords = 3 * Dim / Lanes,
  localparam int unsigned TokenWords = Dim / Lanes,
  localparam int unsigned QkvAddrBits = $clog2(Tokens * QkvWords),
  localparam int unsigned TokenAddrBits = $clog2(Tokens * TokenWords)
) (
  input  wire logic                       clk_i,
  input  wire logic                       rst_i,
  input  wire logic                       start_i,   // one pulse: run every head
  input  wire logic [31:0]                heads_ready_i,  // heads whose q, k and v are in the buffer
  output logic                            done_o,    // one pulse: the last output word is written
  output logic                            busy_o,
  // q | k | v buffer read port (data one cycle after the address)
  output logic                            rd_en_o,
  output logic      [QkvAddrBits-1:0]     rd_addr_o,
  input  wire logic [Lanes*ActBits-1:0]   rd_data_i,
  // output buffer write port
  output logic                            wr_en_o,
  output logic      [TokenAddrBits-1:0]     wr_addr_o,
  output logic      [Lanes*ActBits-1:0]   wr_data_o
);
  localparam int unsigned BeatsPerWord = Lanes / AttnBlock;
  localparam int unsigned RowBeats = HeadDim / AttnBlock;  // beats of one head's row
  localparam int unsigned Groups = (Tokens + AttnP - 1) / AttnP;
  localparam int unsigned SweepRows = Tokens + AttnP - 1;
  localparam int unsigned RowBits = $clog2(SweepRows + AttnP);
  localparam int unsigned BeatBits = RowBeats > 1 ? $clog2(RowBeats) : 1;
  localparam int unsigned HeadBits = Heads > 1 ? $clog2(Heads) : 1;
  localparam int unsigned GroupBits = Groups > 1 ? $clog2(Groups) : 1;
  localparam int unsigned SubBits = BeatsPerWord > 1 ? $clog2(BeatsPerWord) : 1;
  localparam int unsigned BeatWidth = AttnBlock * ActBits;

  if (Lanes % AttnBlock != 0 || HeadDim % Lanes != 0 || Dim % Lanes != 0) begin : gen_bad_lanes
    $fatal(1, "%m: attention_engine needs Lanes (%0d) a multiple of AttnBlock (%0d), dividing %s",
           Lanes, AttnBlock, "HeadDim and Dim");
  end

  typedef enum logic [1:0] {FeedQ, FeedK, FeedV, FeedDone} feed_e;

  // ---------------------------------------------------------------- feed side: read the rows
  feed_e                feed_q;
  logic [HeadBits-1:0]  head_q;
  logic [GroupBits-1:0] group_q;
  logic [RowBits-1:0]   row_q;   // slot (q) or sweep step (k, v)
  logic [BeatBits-1:0]  beat_q;  // beat within the head's row
  logic                 running_q;
  logic                 issue;   // a beat enters the read pipeline this cycle
  logic                 zero_row;
  logic                 take;    // the unit takes the buffer's head beat this cycle

  // beats in flight (read issued, data not yet in the buffer) and held in the two-entry buffer
  logic       pend_q;
  logic       pend_zero_q;
  logic [SubBits-1:0] pend_sub_q;
  feed_e      pend_kind_q;
  logic [1:0] count_q;
  logic [BeatWidth-1:0] buf_data_q [2];
  feed_e      buf_kind_q [2];
  logic       head_ptr_q, tail_ptr_q;

  logic [$clog2(Tokens + AttnP)-1:0] token;
  always_comb begin
    if (feed_q == FeedQ) begin
      token = ($clog2(Tokens + AttnP))'(32'(group_q) * AttnP + 32'(row_q));
    end else begin
      token = ($clog2(Tokens + AttnP))'(32'(row_q) % Tokens);
    end
  end
  assign zero_row = feed_q == FeedQ && 32'(token) >= Tokens;

  // space for the beat: what is buffered plus what is still being read stays within two (the beat
  // leaving in this cycle frees its place), so the unit gets one beat per cycle
  assign issue = running_q && feed_q != FeedDone && 32'(head_q) < heads_ready_i
                 && (32'(count_q) + 32'(pend_q) < 2 + 32'(take));

  always_comb begin
    logic [31:0] third, dim;
    third = feed_q == FeedQ ? 0 : feed_q == FeedK ? Dim : 2 * Dim;
    dim = third + 32'(head_q) * HeadDim + 32'(beat_q) * AttnBlock;
    rd_en_o = issue && !zero_row;
    rd_addr_o = QkvAddrBits'(32'(token) * QkvWords + dim / Lanes);
  end

  logic last_beat, last_row;
  assign last_beat = 32'(beat_q) == RowBeats - 1;
  assign last_row = feed_q == FeedQ ? 32'(row_q) == AttnP - 1 : 32'(row_q) == SweepRows - 1;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      running_q <= 1'b0;
      feed_q    <= FeedDone;
      head_q    <= '0;
      group_q   <= '0;
      row_q     <= '0;
      beat_q    <= '0;
    end else if (start_i && !running_q) begin
      running_q <= 1'b1;
      feed_q    <= FeedQ;
      head_q    <= '0;
      group_q   <= '0;
      row_q     <= '0;
      beat_q    <= '0;
    end else if (issue) begin
      beat_q <= last_beat ? '0 : beat_q + 1'b1;
      if (last_beat) begin
        row_q <= last_row ? '0 : row_q + 1'b1;
        if (last_row) begin
          unique case (feed_q)
            FeedQ: feed_q <= FeedK;
            FeedK: feed_q <= FeedV;
            FeedV: begin
              feed_q <= FeedQ;
              if (32'(group_q) == Groups - 1) begin
                group_q <= '0;
                head_q  <= head_q + 1'b1;
                if (32'(head_q) == Heads - 1) feed_q <= FeedDone;
              end else begin
                group_q <= group_q + 1'b1;
              end
            end
            default: feed_q <= FeedDone;
          endcase
        end
      end
    end else if (done_o) begin
      running_q <= 1'b0;
    end
  end

  // the beat's AttnBlock lanes within the word the RAM returns
  logic [SubBits-1:0] sub;
  always_comb begin
    logic [31:0] dim;
    dim = 32'(head_q) * HeadDim + 32'(beat_q) * AttnBlock;
    sub = SubBits'((dim % Lanes) / AttnBlock);
  end

  logic q_valid, q_ready, k_valid, k_ready, v_valid, v_ready;
  feed_e head_kind;
  assign head_kind = buf_kind_q[head_ptr_q];
  assign q_valid = count_q != 0 && head_kind == FeedQ;
  assign k_valid = count_q != 0 && head_kind == FeedK;
  assign v_valid = count_q != 0 && head_kind == FeedV;
  assign take = (q_valid && q_ready) || (k_valid && k_ready) || (v_valid && v_ready);

  logic [BeatWidth-1:0] arriving;
  assign arriving = pend_zero_q ? '0 : rd_data_i[32'(pend_sub_q) * BeatWidth +: BeatWidth];

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      pend_q     <= 1'b0;
      count_q    <= '0;
      head_ptr_q <= 1'b0;
      tail_ptr_q <= 1'b0;
    end else begin
      pend_q <= issue;
      if (pend_q) tail_ptr_q <= !tail_ptr_q;
      if (take) head_ptr_q <= !head_ptr_q;
      count_q <= count_q + 2'(pend_q) - 2'(take);
    end
  end

  always_ff @(posedge clk_i) begin
    if (issue) begin
      pend_zero_q <= zero_row;
      pend_sub_q  <= sub;
      pend_kind_q <= feed_q;
    end
    if (pend_q) begin
      buf_data_q[tail_ptr_q] <= arriving;
      buf_kind_q[tail_ptr_q] <= pend_kind_q;
    end
  end

  // ---------------------------------------------------------------- the unit
  logic                 o_valid, o_last;
  logic [BeatWidth-1:0] o_data;

  attention_unit #(
    .Slots    (AttnP),
    .BeatLanes(AttnBlock),
    .HeadSize (HeadDim),
    .NumTokens(Tokens)
  ) u_attention (
    .clk_i    (clk_i),
    .rst_i    (rst_i),
    .q_valid_i(q_valid),
    .q_ready_o(q_ready),
    .q_data_i (buf_data_q[head_ptr_q]),
    .k_valid_i(k_valid),
    .k_ready_o(k_ready),
    .k_data_i (buf_data_q[head_ptr_q]),
    .v_valid_i(v_valid),
    .v_ready_o(v_ready),
    .v_data_i (buf_data_q[head_ptr_q]),
    .o_valid_o(o_valid),
    .o_ready_i(1'b1),
    .o_data_o (o_data),
    .o_last_o (o_last)
  );

  // ---------------------------------------------------------------- output side: gather and write
  logic [HeadBits-1:0]  o_head_q;
  logic [GroupBits-1:0] o_group_q;
  logic [RowBits-1:0]   o_slot_q;
  logic [BeatBits-1:0]  o_beat_q;
  logic [Lanes*ActBits-1:0] word_q;
  logic                 o_last_beat, o_last_slot, o_last_group, o_word_end;
  logic [31:0]          o_token, o_dim;

  assign o_last_beat = 32'(o_beat_q) == RowBeats - 1;
  assign o_last_slot = 32'(o_slot_q) == AttnP - 1;
  assign o_last_group = 32'(o_group_q) == Groups - 1;
  assign o_token = 32'(o_group_q) * AttnP + 32'(o_slot_q);
  assign o_dim = 32'(o_head_q) * HeadDim + 32'(o_beat_q) * AttnBlock;
  assign o_word_end = (o_dim % Lanes) / AttnBlock == BeatsPerWord - 1;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      o_head_q  <= '0;
      o_group_q <= '0;
      o_slot_q  <= '0;
      o_beat_q  <= '0;
      wr_en_o   <= 1'b0;
      done_o    <= 1'b0;
    end else begin
      wr_en_o <= 1'b0;
      done_o  <= 1'b0;
      if (o_valid) begin
        wr_en_o <= o_word_end && o_token < Tokens;
        o_beat_q <= o_last_beat ? '0 : o_beat_q + 1'b1;
        if (o_last_beat) begin
          o_slot_q <= o_last_slot ? '0 : o_slot_q + 1'b1;
          if (o_last_slot) begin
            o_group_q <= o_last_group ? '0 : o_group_q + 1'b1;
            if (o_last_group) begin
              o_head_q <= 32'(o_head_q) == Heads - 1 ? '0 : o_head_q + 1'b1;
              done_o   <= 32'(o_head_q) == Heads - 1;
            end
          end
        end
      end
    end
  end

  if (BeatsPerWord > 1) begin : gen_gather
    always_ff @(posedge clk_i) begin
      if (o_valid) word_q <= {o_data, word_q[Lanes*ActBits-1:BeatWidth]};
    end
  end else begin : gen_word
    always_ff @(posedge clk_i) begin
      if (o_valid) word_q <= o_data;
    end
  end

  always_ff @(posedge clk_i) begin
    if (o_valid && o_word_end) wr_addr_o <= TokenAddrBits'(o_token * TokenWords + o_dim / Lanes);
  end
  assign wr_data_o = word_q;
  assign busy_o = running_q;

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i && o_valid && o_last && !(o_last_beat && o_last_slot)) begin
      $error("%m: o_last away from the last beat of the group's last slot");
    end
    if (!rst_i && start_i && running_q) begin
      $error("%m: start while the engine is running");
    end
  end
`endif
endmodule

`default_nettype wire
