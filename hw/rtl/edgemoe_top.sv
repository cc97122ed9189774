// The accelerator: the interface of the HLS top (hls/src/edgemoe_top.cpp) — the ap_ctrl_hs
// registers of host/layout.py on s_axi_control, the weight image read on m_axi_gmem0, the images
// on m_axi_gmem1, the tokens written on m_axi_gmem2, in the same memory layout — around the RTL
// units, run one pass at a time except attention, which runs beside the q | k | v pass.
//
// One call runs BATCH images for task TASK (TASK >= Tasks or BATCH = 0 run nothing; CONFIG_ID is
// valid after every call). Per image, in the order of edgemoe.golden.fixed.model:
//   Patch   linear_engine on the image's patches (pixels read per output tile, given as act)
//           -> acc rows 1..                                                    (patch_embed)
//   Pos     x = t == 0 ? act(pos[0]) : act(acc + pos[t]), pos_embed read from the image
//   per block i:
//     Ln1   h = LayerNorm(x), gamma/beta read first
//     Qkv   qkv = linear(h), its tiles head by head (tile_order); beside it, from the Qkv
//           state's first cycle, hid = attention(qkv) on every head and group, each head as
//           soon as its q, k and v tiles are written
//     Att   waits for the attention's last output word       Proj  acc = linear(hid)
//     Resid x = sat(x + acc), acc = 0                        Ln2   h = LayerNorm(x)
//     dense: Fc1  hid = gelu(linear(h))   Fc2  acc = linear(hid)
//     MoE:   Gate logits -> moe_router (scores, active experts, queues); per active expert
//            ExpertFc1 hid = gelu(linear(h[queue]))  ExpertFc2 acc[queue] += p * linear(hid)
//     Resid x = sat(x + acc), acc = 0
//   Store   x -> tokens (TOKENS x DIM activation words)
// Token buffers (token_ram, words of Lanes = LinearIn activations, token after token): x, h,
// qkv, hid (the attention's output, one expert's queue or the dense hidden layer) and acc. Every size comes from the
// generated packages; the m_axi_* and s_axi_control_* ports keep the AXI and Vitis names.
`default_nettype none

module edgemoe_top
  import edgemoe_pkg::*;
  import edgemoe_layout_pkg::*;
#(
  parameter int unsigned MaxBurst       = 64,
  parameter int unsigned MaxOutstanding = 4,
  localparam int unsigned CtrlAddrBits  = $clog2(RegAddrRange)
) (
  input  wire logic                    ap_clk,
  input  wire logic                    ap_rst_n,
  /* verilator lint_off SYMRSVDWORD */  // the Vitis name of the interrupt pin
  output logic                         interrupt,
  /* verilator lint_on SYMRSVDWORD */
  // AXI4-Lite control
  input  wire logic [CtrlAddrBits-1:0] s_axi_control_awaddr,
  input  wire logic                    s_axi_control_awvalid,
  output logic                         s_axi_control_awready,
  input  wire logic [31:0]             s_axi_control_wdata,
  input  wire logic [3:0]              s_axi_control_wstrb,
  input  wire logic                    s_axi_control_wvalid,
  output logic                         s_axi_control_wready,
  output logic      [1:0]              s_axi_control_bresp,
  output logic                         s_axi_control_bvalid,
  input  wire logic                    s_axi_control_bready,
  input  wire logic [CtrlAddrBits-1:0] s_axi_control_araddr,
  input  wire logic                    s_axi_control_arvalid,
  output logic                         s_axi_control_arready,
  output logic      [31:0]             s_axi_control_rdata,
  output logic      [1:0]              s_axi_control_rresp,
  output logic                         s_axi_control_rvalid,
  input  wire logic                    s_axi_control_rready,
  // gmem0: the weight image (read)
  output logic      [0:0]              m_axi_gmem0_arid,
  output logic      [63:0]             m_axi_gmem0_araddr,
  output logic      [7:0]              m_axi_gmem0_arlen,
  output logic      [2:0]              m_axi_gmem0_arsize,
  output logic      [1:0]              m_axi_gmem0_arburst,
  output logic      [3:0]              m_axi_gmem0_arcache,
  output logic      [2:0]              m_axi_gmem0_arprot,
  output logic                         m_axi_gmem0_arvalid,
  input  wire logic                    m_axi_gmem0_arready,
  input  wire logic [0:0]              m_axi_gmem0_rid,
  input  wire logic [AxiBits-1:0]      m_axi_gmem0_rdata,
  input  wire logic [1:0]              m_axi_gmem0_rresp,
  input  wire logic                    m_axi_gmem0_rlast,
  input  wire logic                    m_axi_gmem0_rvalid,
  output logic                         m_axi_gmem0_rready,
  // gmem1: the images (read)
  output logic      [0:0]              m_axi_gmem1_arid,
  output logic      [63:0]             m_axi_gmem1_araddr,
  output logic      [7:0]              m_axi_gmem1_arlen,
  output logic      [2:0]              m_axi_gmem1_arsize,
  output logic      [1:0]              m_axi_gmem1_arburst,
  output logic      [3:0]              m_axi_gmem1_arcache,
  output logic      [2:0]              m_axi_gmem1_arprot,
  output logic                         m_axi_gmem1_arvalid,
  input  wire logic                    m_axi_gmem1_arready,
  input  wire logic [0:0]              m_axi_gmem1_rid,
  input  wire logic [AxiBits-1:0]      m_axi_gmem1_rdata,
  input  wire logic [1:0]              m_axi_gmem1_rresp,
  input  wire logic                    m_axi_gmem1_rlast,
  input  wire logic                    m_axi_gmem1_rvalid,
  output logic                         m_axi_gmem1_rready,
  // gmem2: the tokens (write)
  output logic      [0:0]              m_axi_gmem2_awid,
  output logic      [63:0]             m_axi_gmem2_awaddr,
  output logic      [7:0]              m_axi_gmem2_awlen,
  output logic      [2:0]              m_axi_gmem2_awsize,
  output logic      [1:0]              m_axi_gmem2_awburst,
  output logic      [3:0]              m_axi_gmem2_awcache,
  output logic      [2:0]              m_axi_gmem2_awprot,
  output logic                         m_axi_gmem2_awvalid,
  input  wire logic                    m_axi_gmem2_awready,
  output logic      [AxiBits-1:0]      m_axi_gmem2_wdata,
  output logic      [AxiBits/8-1:0]    m_axi_gmem2_wstrb,
  output logic                         m_axi_gmem2_wlast,
  output logic                         m_axi_gmem2_wvalid,
  input  wire logic                    m_axi_gmem2_wready,
  input  wire logic [0:0]              m_axi_gmem2_bid,
  input  wire logic [1:0]              m_axi_gmem2_bresp,
  input  wire logic                    m_axi_gmem2_bvalid,
  output logic                         m_axi_gmem2_bready
);
  function automatic int unsigned word_bits(int unsigned bits);
    return bits <= 8 ? 8 : bits <= 16 ? 16 : bits <= 32 ? 32 : 64;
  endfunction
  function automatic int unsigned max2(int unsigned a, int unsigned b);
    return a > b ? a : b;
  endfunction

  localparam int unsigned Lanes = LinearIn;
  localparam int unsigned TokenWords = Dim / Lanes;                             // words of a token
  localparam int unsigned QkvWords = 3 * TokenWords;                             // words of a q | k | v row
  localparam int unsigned HiddenWords = max2(MlpHidden, ExpertHidden) / Lanes;  // words of a hidden row
  localparam int unsigned WordBits = Lanes * ActBits;
  localparam int unsigned PixelWordBits = word_bits(PixelBits);
  localparam int unsigned VecWordBits = word_bits(NormBits);  // norm and pos_embed words
  localparam int unsigned ActWordBits = word_bits(ActBits);
  localparam int unsigned PixChunks = AxiBits / (Lanes * PixelWordBits);  // x beats per image beat
  localparam int unsigned VecWordWidth = Lanes * VecWordBits;             // a word of Lanes norm values
  localparam int unsigned VecChunks = VecWordWidth <= AxiBits ? AxiBits / VecWordWidth : 1;  // words per beat
  localparam int unsigned VecGather = VecWordWidth > AxiBits ? VecWordWidth / AxiBits : 1;   // beats per word
  localparam int unsigned OutBeats = Lanes * ActWordBits / AxiBits;       // token beats per word
  localparam int unsigned ImageBeats = Patches * PatchIn * PixelWordBits / AxiBits;
  localparam int unsigned PosBeats = Tokens * Dim * VecWordBits / AxiBits;
  localparam int unsigned NormBeats = Dim * VecWordBits / AxiBits;
  localparam int unsigned TokenBeats = Tokens * Dim * ActWordBits / AxiBits;
  localparam int unsigned ExpertBits = Experts > 1 ? $clog2(Experts) : 1;
  localparam int unsigned BlockBits = Depth > 1 ? $clog2(Depth) : 1;
  localparam int unsigned TaskBits = Tasks > 1 ? $clog2(Tasks) : 1;
  localparam int unsigned TokenBits = Tokens > 1 ? $clog2(Tokens) : 1;
  localparam int unsigned CountBits = $clog2(Tokens + 1);
  localparam int unsigned TokenAddrBits = $clog2(Tokens * TokenWords);
  localparam int unsigned QkvAddrBits = $clog2(Tokens * QkvWords);
  localparam int unsigned HiddenAddrBits = $clog2(Tokens * HiddenWords);
  localparam int unsigned SrcAddrBits = TokenAddrBits > HiddenAddrBits ? TokenAddrBits : HiddenAddrBits;

  if (LinearOut != LinearIn || Dim % Lanes != 0 || MlpHidden % Lanes != 0 || ExpertHidden % Lanes != 0
      || PatchIn % Lanes != 0 || Experts > LinearOut) begin : gen_bad_shape
    $fatal(1, "%m: edgemoe_top needs LinearIn == LinearOut dividing Dim, the hidden sizes and PatchIn, %s",
           "and Experts <= LinearOut");
  end
  if (AxiBits % (Lanes * PixelWordBits) != 0 || (AxiBits % VecWordWidth != 0 && VecWordWidth % AxiBits != 0)
      || (Lanes * ActWordBits) % AxiBits != 0 || word_bits(PosEmbedBits) != VecWordBits
      || (Patches * PatchIn * PixelWordBits) % AxiBits != 0 || (Tokens * Dim * ActWordBits) % AxiBits != 0
      || (Dim * VecWordBits) % AxiBits != 0) begin : gen_bad_axi
    $fatal(1, "%m: edgemoe_top needs whole AXI beats of pixels, norm/pos words (one width) and tokens, %s",
           "a token word of whole beats and a norm/pos word of whole beats or a whole fraction of one");
  end
  if (NormBits > VecWordBits) begin : gen_bad_norm
    $fatal(1, "%m: edgemoe_top needs norm values within their storage words");
  end

  logic clk, rst;
  assign clk = ap_clk;
  assign rst = !ap_rst_n;

  // ---------------------------------------------------------------- control registers
  logic        ap_start, ap_done, ap_idle;
  logic [PerfCounters*64-1:0] counters;
  logic [63:0] arg_weights, arg_images, arg_tokens;
  logic [31:0] arg_task, arg_batch;

  ap_ctrl_regs u_regs (
    .clk_i                (clk),
    .rst_i                (rst),
    .s_axi_control_awaddr (s_axi_control_awaddr),
    .s_axi_control_awvalid(s_axi_control_awvalid),
    .s_axi_control_awready(s_axi_control_awready),
    .s_axi_control_wdata  (s_axi_control_wdata),
    .s_axi_control_wstrb  (s_axi_control_wstrb),
    .s_axi_control_wvalid (s_axi_control_wvalid),
    .s_axi_control_wready (s_axi_control_wready),
    .s_axi_control_bresp  (s_axi_control_bresp),
    .s_axi_control_bvalid (s_axi_control_bvalid),
    .s_axi_control_bready (s_axi_control_bready),
    .s_axi_control_araddr (s_axi_control_araddr),
    .s_axi_control_arvalid(s_axi_control_arvalid),
    .s_axi_control_arready(s_axi_control_arready),
    .s_axi_control_rdata  (s_axi_control_rdata),
    .s_axi_control_rresp  (s_axi_control_rresp),
    .s_axi_control_rvalid (s_axi_control_rvalid),
    .s_axi_control_rready (s_axi_control_rready),
    .ap_start_o           (ap_start),
    .ap_ready_i           (ap_done),
    .ap_done_i            (ap_done),
    .ap_idle_i            (ap_idle),
    .weights_o            (arg_weights),
    .images_o             (arg_images),
    .tokens_o             (arg_tokens),
    .task_o               (arg_task),
    .batch_o              (arg_batch),
    .counters_i           (counters),
    .interrupt_o          (interrupt)
  );

  // ---------------------------------------------------------------- schedule
  typedef enum logic [4:0] {
    SIdle, SPatch, SPos, SLn1, SQkv, SAtt, SProj, SResidAttn, SLn2, SFc1, SFc2, SGate,
    SExpertFc1, SExpertFc2, SResidMlp, SStore, SDone
  } state_e;

  state_e      state_q;
  logic        entry_q;  // the first cycle of a state
  logic        pass_done;
  logic [63:0] weights_q, images_q, tokens_q;
  logic [TaskBits-1:0] task_q;
  logic [31:0] batch_q, image_q, block_q;
  logic [31:0] active_q;  // the active expert being run (MoE)

  // router results
  logic [ExpertBits-1:0]    sel_expert_q [Tokens][TopK];
  logic [GateScoreBits-1:0] sel_score_q  [Tokens][TopK];
  logic [ExpertBits-1:0]    act_expert_q [Experts];
  logic [CountBits-1:0]     act_count_q  [Experts];
  logic [31:0]              act_start_q  [Experts];
  logic [31:0]              n_active_q;
  logic [TokenBits-1:0]     queue_q [Tokens * TopK];

  logic is_moe;
  assign is_moe = IsMoe[block_q[BlockBits-1:0]];

  function automatic state_e after_resid(state_e s, logic [31:0] block);
    if (s == SResidAttn) return SLn2;
    if (block == Depth - 1) return SStore;
    return SLn1;
  endfunction

  always_ff @(posedge clk) begin
    if (rst) begin
      state_q <= SIdle;
      entry_q <= 1'b0;
    end else begin
      entry_q <= 1'b0;
      unique case (state_q)
        SIdle: begin
          if (ap_start) begin
            entry_q <= 1'b1;
            state_q <= arg_task < Tasks && arg_batch != 0 ? SPatch : SDone;
          end
        end
        SDone: state_q <= SIdle;
        default: begin
          if (pass_done) begin
            entry_q <= 1'b1;
            unique case (state_q)
              SPatch:     state_q <= SPos;
              SPos:       state_q <= SLn1;
              SLn1:       state_q <= SQkv;
              SQkv:       state_q <= SAtt;
              SAtt:       state_q <= SProj;
              SProj:      state_q <= SResidAttn;
              SResidAttn: state_q <= SLn2;
              SLn2:       state_q <= is_moe ? SGate : SFc1;
              SFc1:       state_q <= SFc2;
              SFc2:       state_q <= SResidMlp;
              SGate:      state_q <= n_active_q != 0 ? SExpertFc1 : SResidMlp;
              SExpertFc1: state_q <= SExpertFc2;
              SExpertFc2: state_q <= active_q + 1 < n_active_q ? SExpertFc1 : SResidMlp;
              SResidMlp:  state_q <= after_resid(SResidMlp, block_q);
              SStore:     state_q <= image_q + 1 < batch_q ? SPatch : SDone;
              default:    state_q <= SIdle;
            endcase
          end
        end
      endcase
    end
  end

  always_ff @(posedge clk) begin
    if (state_q == SIdle && ap_start) begin
      weights_q <= arg_weights;
      images_q  <= arg_images;
      tokens_q  <= arg_tokens;
      task_q    <= arg_task[TaskBits-1:0];
      batch_q   <= arg_batch;
      image_q   <= '0;
      block_q   <= '0;
    end
    if (pass_done && state_q == SResidMlp) block_q <= block_q + 1;
    if (pass_done && state_q == SStore) begin
      image_q <= image_q + 1;
      block_q <= '0;
    end
    if (pass_done && state_q == SGate) active_q <= '0;
    if (pass_done && state_q == SExpertFc2) active_q <= active_q + 1;
  end

  assign ap_idle = state_q == SIdle;
  assign ap_done = state_q == SDone;

  // ---------------------------------------------------------------- token buffers
  logic                      x_we, x_re, h_we, h_re, q_we, q_re, hid_we, hid_re, acc_we, acc_re;
  logic [TokenAddrBits-1:0]  x_wa, x_ra, h_wa, h_ra, acc_wa, acc_ra;
  logic [QkvAddrBits-1:0]    q_wa, q_ra;
  logic [HiddenAddrBits-1:0] hid_wa, hid_ra;
  logic [WordBits-1:0]       x_wd, x_rd, h_wd, h_rd, q_wd, q_rd, hid_wd, hid_rd, acc_wd, acc_rd;

  token_ram #(.Words(Tokens * TokenWords), .WordBits(WordBits)) u_x (
    .clk_i(clk), .wr_en_i(x_we), .wr_addr_i(x_wa), .wr_data_i(x_wd),
    .rd_en_i(x_re), .rd_addr_i(x_ra), .rd_data_o(x_rd)
  );
  token_ram #(.Words(Tokens * TokenWords), .WordBits(WordBits)) u_h (
    .clk_i(clk), .wr_en_i(h_we), .wr_addr_i(h_wa), .wr_data_i(h_wd),
    .rd_en_i(h_re), .rd_addr_i(h_ra), .rd_data_o(h_rd)
  );
  token_ram #(.Words(Tokens * QkvWords), .WordBits(WordBits)) u_qkv (
    .clk_i(clk), .wr_en_i(q_we), .wr_addr_i(q_wa), .wr_data_i(q_wd),
    .rd_en_i(q_re), .rd_addr_i(q_ra), .rd_data_o(q_rd)
  );
  token_ram #(.Words(Tokens * HiddenWords), .WordBits(WordBits)) u_hid (
    .clk_i(clk), .wr_en_i(hid_we), .wr_addr_i(hid_wa), .wr_data_i(hid_wd),
    .rd_en_i(hid_re), .rd_addr_i(hid_ra), .rd_data_o(hid_rd)
  );
  token_ram #(.Words(Tokens * TokenWords), .WordBits(WordBits)) u_acc (
    .clk_i(clk), .wr_en_i(acc_we), .wr_addr_i(acc_wa), .wr_data_i(acc_wd),
    .rd_en_i(acc_re), .rd_addr_i(acc_ra), .rd_data_o(acc_rd)
  );

  // ---------------------------------------------------------------- linear passes
  logic is_linear;
  assign is_linear = state_q inside {SPatch, SQkv, SProj, SFc1, SFc2, SGate, SExpertFc1, SExpertFc2};

  // the layer of the current state
  logic [63:0] l_weights, l_bias;
  logic [31:0] l_tiles, l_words, l_rows, l_qbase;
  logic        l_patch, l_gather, l_src_hid, l_head_major;
  logic [31:0] l_src_words;  // words per row of the source buffer
  bias_kind_e  l_bias_kind;
  epilogue_e   l_epilogue;
  logic [31:0] l_expert;

  always_comb begin
    logic [BlockBits-1:0] i;
    i = block_q[BlockBits-1:0];
    l_expert    = 32'(act_expert_q[active_q[ExpertBits-1:0]]);
    l_qbase     = act_start_q[active_q[ExpertBits-1:0]];
    l_weights   = '0;
    l_bias      = '0;
    l_tiles     = Dim / LinearOut;
    l_words     = Dim / Lanes;
    l_rows      = Tokens;
    l_patch     = 1'b0;
    l_gather    = 1'b0;
    l_src_hid   = 1'b0;
    l_src_words = TokenWords;
    l_head_major = 1'b0;
    l_bias_kind = BiasKindBias;
    l_epilogue  = EpilogueBias;
    unique case (state_q)
      SPatch: begin
        l_weights = PatchEmbedWeightOffset;
        l_bias    = PatchEmbedBiasOffset;
        l_words   = PatchIn / Lanes;
        l_rows    = Patches;
        l_patch   = 1'b1;
      end
      SQkv: begin
        l_weights   = BlockQkvWeightOffset[i];
        l_bias      = BlockQkvBiasOffset[i];
        l_tiles     = 3 * Dim / LinearOut;
        l_bias_kind = BiasKindAttnBias;
        l_head_major = 1'b1;
      end
      SProj: begin
        l_weights   = BlockAttnProjWeightOffset[i];
        l_bias      = BlockAttnProjBiasOffset[i];
        l_bias_kind = BiasKindAttnBias;
        l_src_hid   = 1'b1;  // the attention's output, TokenWords per row
      end
      SFc1: begin
        l_weights  = BlockFc1WeightOffset[i];
        l_bias     = BlockFc1BiasOffset[i];
        l_tiles    = MlpHidden / LinearOut;
        l_epilogue = EpilogueBiasGelu;
      end
      SFc2: begin
        l_weights = BlockFc2WeightOffset[i];
        l_bias    = BlockFc2BiasOffset[i];
        l_words   = MlpHidden / Lanes;
        l_src_hid = 1'b1;
        l_src_words = HiddenWords;
      end
      SGate: begin
        l_weights   = BlockGateOffset[i][task_q];
        l_tiles     = 1;
        l_bias_kind = BiasKindNone;
      end
      SExpertFc1: begin
        l_weights  = BlockHtoh4WeightOffset[i] + 64'(l_expert) * BlockHtoh4WeightItemBytes[i];
        l_bias     = BlockHtoh4BiasOffset[i] + 64'(l_expert) * BlockHtoh4BiasItemBytes[i];
        l_tiles    = ExpertHidden / LinearOut;
        l_rows     = 32'(act_count_q[active_q[ExpertBits-1:0]]);
        l_gather   = 1'b1;
        l_epilogue = EpilogueBiasGelu;
      end
      SExpertFc2: begin
        l_weights  = BlockH4tohWeightOffset[i] + 64'(l_expert) * BlockH4tohWeightItemBytes[i];
        l_bias     = BlockH4tohBiasOffset[i] + 64'(l_expert) * BlockH4tohBiasItemBytes[i];
        l_words    = ExpertHidden / Lanes;
        l_rows     = 32'(act_count_q[active_q[ExpertBits-1:0]]);
        l_src_hid  = 1'b1;
        l_src_words = HiddenWords;
        l_epilogue = EpilogueExpertAccumulate;
      end
      default: ;
    endcase
  end

  // engine command: offered from the first cycle of a linear state until taken
  logic cmd_pending_q, eng_cmd_ready;
  always_ff @(posedge clk) begin
    if (rst) begin
      cmd_pending_q <= 1'b0;
    end else if (entry_q && is_linear) begin
      cmd_pending_q <= 1'b1;
    end else if (eng_cmd_ready) begin
      cmd_pending_q <= 1'b0;
    end
  end

  // x rows: (tile, row, word) counters over the source buffer, or the image's pixels
  logic [31:0] xt_q, xr_q, xw_q;
  logic        xgen_q;  // addresses left to issue
  logic        src_addr_valid, src_addr_ready, src_addr_last;
  logic [31:0] x_src_row;
  assign x_src_row = l_gather ? 32'(queue_q[l_qbase + xr_q]) : xr_q;
  assign src_addr_last = xr_q == l_rows - 1 && xw_q == l_words - 1;
  assign src_addr_valid = xgen_q;

  always_ff @(posedge clk) begin
    if (rst) begin
      xgen_q <= 1'b0;
    end else if (entry_q && is_linear && state_q != SPatch) begin
      xgen_q <= 1'b1;
      xt_q <= '0;
      xr_q <= '0;
      xw_q <= '0;
    end else if (src_addr_valid && src_addr_ready) begin
      xw_q <= xw_q == l_words - 1 ? '0 : xw_q + 1;
      if (xw_q == l_words - 1) begin
        xr_q <= xr_q == l_rows - 1 ? '0 : xr_q + 1;
        if (xr_q == l_rows - 1) begin
          xt_q <= xt_q + 1;
          if (xt_q == l_tiles - 1) xgen_q <= 1'b0;
        end
      end
    end
  end

  logic                   src_valid, src_ready, src_last;
  logic [WordBits-1:0]    src_data;
  logic                   src_re;
  logic [SrcAddrBits-1:0] src_ra;

  ram_read_stream #(.AddrBits(SrcAddrBits), .WordBits(WordBits), .UserBits(1)) u_src_stream (
    .clk_i       (clk),
    .rst_i       (rst),
    .addr_valid_i(src_addr_valid),
    .addr_ready_o(src_addr_ready),
    .addr_i      (SrcAddrBits'(x_src_row * l_src_words + xw_q)),
    .addr_user_i (src_addr_last),
    .rd_en_o     (src_re),
    .rd_addr_o   (src_ra),
    .rd_data_i   (l_src_hid ? hid_rd : h_rd),
    .word_valid_o(src_valid),
    .word_ready_i(src_ready),
    .word_o      (src_data),
    .word_user_o (src_last)
  );

  // pixels: one image read per output tile, PixChunks x beats of Lanes pixels per AXI beat
  logic                img_cmd_valid, img_cmd_ready, img_valid, img_ready, img_last;
  logic [AxiBits-1:0]  img_data;
  logic [31:0]         img_tiles_q, img_chunk_q;
  logic                img_pending_q;

  always_ff @(posedge clk) begin
    if (rst) begin
      img_pending_q <= 1'b0;
    end else if (entry_q && state_q == SPatch) begin
      img_pending_q <= 1'b1;
      img_tiles_q   <= '0;
    end else if (img_cmd_valid && img_cmd_ready) begin
      img_tiles_q <= img_tiles_q + 1;
      if (img_tiles_q == l_tiles - 1) img_pending_q <= 1'b0;
    end
  end
  assign img_cmd_valid = img_pending_q;

  axi_burst_reader #(
    .AddrBits(64), .DataBits(AxiBits), .MaxBurst(MaxBurst), .MaxOutstanding(MaxOutstanding)
  ) u_images (
    .clk_i        (clk),
    .rst_i        (rst),
    .cmd_valid_i  (img_cmd_valid),
    .cmd_ready_o  (img_cmd_ready),
    .cmd_addr_i   (images_q + 64'(image_q) * ImageBytes),
    .cmd_beats_i  (ImageBeats),
    .d_valid_o    (img_valid),
    .d_ready_i    (img_ready),
    .d_data_o     (img_data),
    .d_last_o     (img_last),
    .error_o      (),
    .m_axi_arid   (m_axi_gmem1_arid),
    .m_axi_araddr (m_axi_gmem1_araddr),
    .m_axi_arlen  (m_axi_gmem1_arlen),
    .m_axi_arsize (m_axi_gmem1_arsize),
    .m_axi_arburst(m_axi_gmem1_arburst),
    .m_axi_arcache(m_axi_gmem1_arcache),
    .m_axi_arprot (m_axi_gmem1_arprot),
    .m_axi_arvalid(m_axi_gmem1_arvalid),
    .m_axi_arready(m_axi_gmem1_arready),
    .m_axi_rid    (m_axi_gmem1_rid),
    .m_axi_rdata  (m_axi_gmem1_rdata),
    .m_axi_rresp  (m_axi_gmem1_rresp),
    .m_axi_rlast  (m_axi_gmem1_rlast),
    .m_axi_rvalid (m_axi_gmem1_rvalid),
    .m_axi_rready (m_axi_gmem1_rready)
  );

  logic                x_valid, x_ready, x_last;
  logic [WordBits-1:0] x_data, pix_act;
  logic                pix_chunk_last;
  assign pix_chunk_last = img_chunk_q == PixChunks - 1;
  for (genvar l = 0; l < Lanes; l++) begin : gen_pixels
    logic [PixelBits-1:0] px;
    assign px = img_data[(32'(img_chunk_q) * Lanes + l) * PixelWordBits +: PixelBits];
    assign pix_act[l*ActBits +: ActBits] = ActBits'(px) << (ActFracBits - PixelFracBits);
  end
  always_ff @(posedge clk) begin
    if (rst || (entry_q && state_q == SPatch)) begin
      img_chunk_q <= '0;
    end else if (state_q == SPatch && x_valid && x_ready) begin
      img_chunk_q <= pix_chunk_last ? '0 : img_chunk_q + 1;
    end
  end
  assign img_ready = state_q == SPatch && x_ready && pix_chunk_last;
  assign x_valid   = state_q == SPatch ? img_valid : src_valid && is_linear;
  assign x_data    = state_q == SPatch ? pix_act : src_data;
  assign x_last    = state_q == SPatch ? img_last && pix_chunk_last : src_last;
  assign src_ready = is_linear && state_q != SPatch && x_ready;

  // ExpertAccumulate: per (tile, row) the row's gate score and its acc word
  logic [31:0]              accum_tile_q, accum_row_q;
  logic                     accum_gen_q, accum_valid, accum_ready;
  logic [31:0]              accum_token;
  logic [GateScoreBits-1:0] accum_score;
  assign accum_token = 32'(queue_q[l_qbase + accum_row_q]);
  always_comb begin
    accum_score = '0;
    for (int k = 0; k < TopK; k++) begin
      if (32'(sel_expert_q[accum_token[TokenBits-1:0]][k]) == l_expert) begin
        accum_score = sel_score_q[accum_token[TokenBits-1:0]][k];
      end
    end
  end
  assign accum_valid = accum_gen_q;
  always_ff @(posedge clk) begin
    if (rst) begin
      accum_gen_q <= 1'b0;
    end else if (entry_q && state_q == SExpertFc2) begin
      accum_gen_q  <= 1'b1;
      accum_tile_q <= '0;
      accum_row_q  <= '0;
    end else if (accum_valid && accum_ready) begin
      accum_row_q <= accum_row_q == l_rows - 1 ? '0 : accum_row_q + 1;
      if (accum_row_q == l_rows - 1) begin
        accum_tile_q <= accum_tile_q + 1;
        if (accum_tile_q == l_tiles - 1) accum_gen_q <= 1'b0;
      end
    end
  end

  // acc reads: the accum stream (ExpertAccumulate) or the sequential reads of Pos and Resid
  logic                     acc_s_valid, acc_s_ready, acc_s_in_valid, acc_s_in_ready;
  logic [WordBits-1:0]      acc_s_data;
  logic [GateScoreBits-1:0] acc_s_score;
  logic [TokenAddrBits-1:0] acc_s_addr;
  logic [31:0]              seq_acc_q;
  logic                     seq_acc_gen_q;
  logic                     acc_stream_re;
  logic [TokenAddrBits-1:0] acc_stream_ra;

  assign acc_s_in_valid = state_q == SExpertFc2 ? accum_valid : seq_acc_gen_q;
  assign accum_ready = state_q == SExpertFc2 && acc_s_in_ready;
  assign acc_s_addr =
    TokenAddrBits'(state_q == SExpertFc2 ? accum_token * TokenWords + accum_tile_q : seq_acc_q);

  always_ff @(posedge clk) begin
    if (rst) begin
      seq_acc_gen_q <= 1'b0;
    end else if (entry_q && state_q inside {SPos, SResidAttn, SResidMlp}) begin
      seq_acc_gen_q <= 1'b1;
      seq_acc_q     <= '0;
    end else if (seq_acc_gen_q && acc_s_in_ready) begin
      seq_acc_q <= seq_acc_q + 1;
      if (seq_acc_q == Tokens * TokenWords - 1) seq_acc_gen_q <= 1'b0;
    end
  end

  ram_read_stream #(.AddrBits(TokenAddrBits), .WordBits(WordBits), .UserBits(GateScoreBits)) u_acc_stream (
    .clk_i       (clk),
    .rst_i       (rst),
    .addr_valid_i(acc_s_in_valid),
    .addr_ready_o(acc_s_in_ready),
    .addr_i      (acc_s_addr),
    .addr_user_i (accum_score),
    .rd_en_o     (acc_stream_re),
    .rd_addr_o   (acc_stream_ra),
    .rd_data_i   (acc_rd),
    .word_valid_o(acc_s_valid),
    .word_ready_i(acc_s_ready),
    .word_o      (acc_s_data),
    .word_user_o (acc_s_score)
  );

  // ---------------------------------------------------------------- the gmem0 readers
  // The linear engine reads tiles; the vector reader reads pos_embed and the norms. Only one
  // runs at a time (the schedule is sequential): the vector reader owns gmem0 in Pos, Ln1, Ln2.
  logic vec_owner;
  assign vec_owner = state_q inside {SPos, SLn1, SLn2};

  logic [0:0]         e_arid, v_arid;
  logic [63:0]        e_araddr, v_araddr;
  logic [7:0]         e_arlen, v_arlen;
  logic [2:0]         e_arsize, v_arsize, e_arprot, v_arprot;
  logic [1:0]         e_arburst, v_arburst;
  logic [3:0]         e_arcache, v_arcache;
  logic               e_arvalid, v_arvalid, e_rready, v_rready;

  assign m_axi_gmem0_arid    = vec_owner ? v_arid : e_arid;
  assign m_axi_gmem0_araddr  = vec_owner ? v_araddr : e_araddr;
  assign m_axi_gmem0_arlen   = vec_owner ? v_arlen : e_arlen;
  assign m_axi_gmem0_arsize  = vec_owner ? v_arsize : e_arsize;
  assign m_axi_gmem0_arburst = vec_owner ? v_arburst : e_arburst;
  assign m_axi_gmem0_arcache = vec_owner ? v_arcache : e_arcache;
  assign m_axi_gmem0_arprot  = vec_owner ? v_arprot : e_arprot;
  assign m_axi_gmem0_arvalid = vec_owner ? v_arvalid : e_arvalid;
  assign m_axi_gmem0_rready  = vec_owner ? v_rready : e_rready;

  logic                y_valid, y_ready, y_last;
  logic [WordBits-1:0] y_data;
  logic                eng_accum_ready, mac_busy, weight_wait;

  linear_engine #(
    .In(Lanes), .Out(LinearOut), .AddrBits(64), .MaxBurst(MaxBurst), .MaxOutstanding(MaxOutstanding)
  ) u_linear (
    .clk_i          (clk),
    .rst_i          (rst),
    .cmd_valid_i    (cmd_pending_q),
    .cmd_ready_o    (eng_cmd_ready),
    .cmd_weights_i  (weights_q + l_weights),
    .cmd_bias_i     (weights_q + l_bias),
    .cmd_tiles_i    (16'(l_tiles)),
    .cmd_words_i    (16'(l_words)),
    .cmd_patch_i    (l_patch),
    .cmd_bias_kind_i(l_bias_kind),
    .cmd_epilogue_i (l_epilogue),
    .cmd_head_major_i(l_head_major),
    .x_valid_i      (x_valid),
    .x_ready_o      (x_ready),
    .x_data_i       (x_data),
    .x_last_i       (x_last),
    .accum_valid_i  (state_q == SExpertFc2 && acc_s_valid),
    .accum_ready_o  (eng_accum_ready),
    .accum_score_i  (acc_s_score),
    .accum_row_i    (acc_s_data),
    .y_valid_o      (y_valid),
    .y_ready_i      (y_ready),
    .y_data_o       (y_data),
    .y_last_o       (y_last),
    .mac_busy_o     (mac_busy),
    .mem_wait_o     (weight_wait),
    .m_axi_arid     (e_arid),
    .m_axi_araddr   (e_araddr),
    .m_axi_arlen    (e_arlen),
    .m_axi_arsize   (e_arsize),
    .m_axi_arburst  (e_arburst),
    .m_axi_arcache  (e_arcache),
    .m_axi_arprot   (e_arprot),
    .m_axi_arvalid  (e_arvalid),
    .m_axi_arready  (!vec_owner && m_axi_gmem0_arready),
    .m_axi_rid      (m_axi_gmem0_rid),
    .m_axi_rdata    (m_axi_gmem0_rdata),
    .m_axi_rresp    (m_axi_gmem0_rresp),
    .m_axi_rlast    (m_axi_gmem0_rlast),
    .m_axi_rvalid   (!vec_owner && m_axi_gmem0_rvalid),
    .m_axi_rready   (e_rready)
  );

  // vector reads: pos_embed (Pos), then gamma and beta (Ln1, Ln2)
  logic               vec_cmd_valid, vec_cmd_ready, vec_valid, vec_ready, vec_last;
  logic [AxiBits-1:0] vec_data;
  logic [63:0]        vec_addr;
  logic [31:0]        vec_beats;
  logic [1:0]         vec_reads_q;  // reads issued in this state
  logic [1:0]         vec_needed;

  assign vec_needed = state_q == SPos ? 2'd1 : state_q inside {SLn1, SLn2} ? 2'd2 : 2'd0;
  always_comb begin
    logic [BlockBits-1:0] i;
    i = block_q[BlockBits-1:0];
    vec_addr  = weights_q + PosEmbedOffset;
    vec_beats = PosBeats;
    if (state_q == SLn1) begin
      vec_addr  = weights_q + (vec_reads_q == 0 ? BlockNorm1WeightOffset[i] : BlockNorm1BiasOffset[i]);
      vec_beats = NormBeats;
    end else if (state_q == SLn2) begin
      vec_addr  = weights_q + (vec_reads_q == 0 ? BlockNorm2WeightOffset[i] : BlockNorm2BiasOffset[i]);
      vec_beats = NormBeats;
    end
  end
  assign vec_cmd_valid = vec_owner && !entry_q && vec_reads_q < vec_needed;
  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      vec_reads_q <= '0;
    end else if (vec_cmd_valid && vec_cmd_ready) begin
      vec_reads_q <= vec_reads_q + 1'b1;
    end
  end

  axi_burst_reader #(
    .AddrBits(64), .DataBits(AxiBits), .MaxBurst(MaxBurst), .MaxOutstanding(MaxOutstanding)
  ) u_vectors (
    .clk_i        (clk),
    .rst_i        (rst),
    .cmd_valid_i  (vec_cmd_valid),
    .cmd_ready_o  (vec_cmd_ready),
    .cmd_addr_i   (vec_addr),
    .cmd_beats_i  (vec_beats),
    .d_valid_o    (vec_valid),
    .d_ready_i    (vec_ready),
    .d_data_o     (vec_data),
    .d_last_o     (vec_last),
    .error_o      (),
    .m_axi_arid   (v_arid),
    .m_axi_araddr (v_araddr),
    .m_axi_arlen  (v_arlen),
    .m_axi_arsize (v_arsize),
    .m_axi_arburst(v_arburst),
    .m_axi_arcache(v_arcache),
    .m_axi_arprot (v_arprot),
    .m_axi_arvalid(v_arvalid),
    .m_axi_arready(vec_owner && m_axi_gmem0_arready),
    .m_axi_rid    (m_axi_gmem0_rid),
    .m_axi_rdata  (m_axi_gmem0_rdata),
    .m_axi_rresp  (m_axi_gmem0_rresp),
    .m_axi_rlast  (m_axi_gmem0_rlast),
    .m_axi_rvalid (vec_owner && m_axi_gmem0_rvalid),
    .m_axi_rready (v_rready)
  );

  // the vector stream as words of Lanes values: chunk c of a beat, or VecGather beats gathered
  logic                    vec_take;   // the word vec_chunk is taken this cycle
  logic                    vec_word;   // a whole word is in vec_chunk
  logic [VecWordWidth-1:0] vec_chunk;
  if (VecGather == 1) begin : gen_vec_chunks
    logic [31:0] vchunk_q;  // chunk within the beat
    logic        vchunk_last;
    assign vchunk_last = vchunk_q == VecChunks - 1;
    assign vec_chunk = vec_data[32'(vchunk_q) * VecWordWidth +: VecWordWidth];
    assign vec_word = vec_valid;
    assign vec_ready = vec_take && vchunk_last;
    always_ff @(posedge clk) begin
      if (rst || entry_q) begin
        vchunk_q <= '0;
      end else if (vec_take) begin
        vchunk_q <= vchunk_last ? '0 : vchunk_q + 1;
      end
    end
  end else begin : gen_vec_gather
    // beats enter at the top and move down: after the last one, beat 0 sits in the low bits
    logic [31:0] vbeats_q;  // beats of the word gathered
    assign vec_word = vbeats_q == VecGather;
    assign vec_ready = !vec_word;
    always_ff @(posedge clk) begin
      if (rst || entry_q) begin
        vbeats_q <= '0;
      end else if (vec_take) begin
        vbeats_q <= '0;
      end else if (vec_valid && vec_ready) begin
        vbeats_q <= vbeats_q + 1;
      end
      if (vec_valid && vec_ready) vec_chunk <= {vec_data, vec_chunk[VecWordWidth-1:AxiBits]};
    end
  end

  // ---------------------------------------------------------------- Pos: x = act(acc + pos)
  // the sum exact at the finer of the two fractions, then one cast to act
  localparam int PosSumFrac = max2(ActFracBits, PosEmbedFracBits);
  localparam int unsigned PosSumBits =
    max2(ActBits + PosSumFrac - ActFracBits, PosEmbedBits + PosSumFrac - PosEmbedFracBits) + 1;
  logic [31:0] join_q;  // word index of the Pos and Resid passes
  logic        pos_take;
  logic [WordBits-1:0] pos_sum;
  assign pos_take = state_q == SPos && vec_word && acc_s_valid;
  for (genvar l = 0; l < Lanes; l++) begin : gen_pos
    logic signed [PosEmbedBits-1:0] pv;
    logic signed [ActBits-1:0]      av;
    logic signed [PosSumBits-1:0]   sum;
    assign pv = vec_chunk[l*VecWordBits +: PosEmbedBits];
    assign av = acc_s_data[l*ActBits +: ActBits];
    assign sum = ((join_q < TokenWords) ? '0 : PosSumBits'(av) <<< (PosSumFrac - ActFracBits))
                 + (PosSumBits'(pv) <<< (PosSumFrac - PosEmbedFracBits));
    fxp_requant #(
      .InBits(PosSumBits), .InFrac(PosSumFrac), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_pos (
      .in_i(sum), .out_o(pos_sum[l*ActBits +: ActBits]), .clip_o()
    );
  end

  // ---------------------------------------------------------------- Resid: x = sat(x + acc)
  logic                     xs_valid, xs_ready, xs_in_valid, xs_in_ready, x_stream_re;
  logic [WordBits-1:0]      xs_data, resid_sum;
  logic [31:0]              xs_addr_q;
  logic [TokenAddrBits-1:0] x_stream_ra;
  logic                     xs_gen_q;
  logic                     resid_take;

  always_ff @(posedge clk) begin
    if (rst) begin
      xs_gen_q <= 1'b0;
    end else if (entry_q && state_q inside {SResidAttn, SResidMlp, SLn1, SLn2, SStore}) begin
      xs_gen_q  <= 1'b1;
      xs_addr_q <= '0;
    end else if (xs_gen_q && xs_in_ready) begin
      xs_addr_q <= xs_addr_q + 1;
      if (xs_addr_q == Tokens * TokenWords - 1) xs_gen_q <= 1'b0;
    end
  end
  assign xs_in_valid = xs_gen_q;

  ram_read_stream #(.AddrBits(TokenAddrBits), .WordBits(WordBits), .UserBits(1)) u_x_stream (
    .clk_i       (clk),
    .rst_i       (rst),
    .addr_valid_i(xs_in_valid),
    .addr_ready_o(xs_in_ready),
    .addr_i      (TokenAddrBits'(xs_addr_q)),
    .addr_user_i (1'b0),
    .rd_en_o     (x_stream_re),
    .rd_addr_o   (x_stream_ra),
    .rd_data_i   (x_rd),
    .word_valid_o(xs_valid),
    .word_ready_i(xs_ready),
    .word_o      (xs_data),
    .word_user_o ()
  );

  assign resid_take = state_q inside {SResidAttn, SResidMlp} && xs_valid && acc_s_valid;
  for (genvar l = 0; l < Lanes; l++) begin : gen_resid
    logic signed [ActBits:0] sum;
    assign sum = (ActBits + 1)'($signed(xs_data[l*ActBits +: ActBits]))
               + (ActBits + 1)'($signed(acc_s_data[l*ActBits +: ActBits]));
    fxp_requant #(
      .InBits(ActBits + 1), .InFrac(ActFracBits), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_resid (
      .in_i(sum), .out_o(resid_sum[l*ActBits +: ActBits]), .clip_o()
    );
  end

  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      join_q <= '0;
    end else if (pos_take || resid_take) begin
      join_q <= join_q + 1;
    end
  end

  // ---------------------------------------------------------------- LayerNorm
  logic [Lanes*VecWordBits-1:0] gamma_q [TokenWords];
  logic [Lanes*VecWordBits-1:0] beta_q [TokenWords];
  logic [31:0]                  pcount_q;   // gamma/beta beats given to the unit
  logic [31:0]                  ln_y_q;     // normalised words written
  logic                         p_valid, p_ready, ln_x_ready, ln_y_valid, ln_y_last;
  logic [Lanes*NormBits-1:0]    p_gamma, p_beta;
  logic [WordBits-1:0]          ln_y_data;
  logic                         is_ln, norms_in;

  // gamma arrives as the first TokenWords chunks of the vector reads, beta as the next TokenWords
  logic [31:0] vtotal_q;
  assign is_ln = state_q inside {SLn1, SLn2};
  assign norms_in = vtotal_q == 2 * TokenWords;
  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      vtotal_q <= '0;
    end else if (vec_take) begin
      vtotal_q <= vtotal_q + 1;
    end
  end
  always_ff @(posedge clk) begin
    if (is_ln && vec_take) begin
      if (vtotal_q < TokenWords) begin
        gamma_q[vtotal_q] <= vec_chunk;
      end else begin
        beta_q[vtotal_q - TokenWords] <= vec_chunk;
      end
    end
  end
  for (genvar l = 0; l < Lanes; l++) begin : gen_norm
    assign p_gamma[l*NormBits +: NormBits] = gamma_q[pcount_q][l*VecWordBits +: NormBits];
    assign p_beta[l*NormBits +: NormBits] = beta_q[pcount_q][l*VecWordBits +: NormBits];
  end
  assign p_valid = is_ln && norms_in && pcount_q < TokenWords;

  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      pcount_q <= '0;
      ln_y_q   <= '0;
    end else begin
      if (p_valid && p_ready) pcount_q <= pcount_q + 1;
      if (ln_y_valid && is_ln) ln_y_q <= ln_y_q + 1;
    end
  end

  layernorm_unit #(.Lanes(Lanes), .D(Dim)) u_layernorm (
    .clk_i    (clk),
    .rst_i    (rst),
    .p_valid_i(p_valid),
    .p_ready_o(p_ready),
    .p_gamma_i(p_gamma),
    .p_beta_i (p_beta),
    .x_valid_i(is_ln && pcount_q == TokenWords && xs_valid),
    .x_ready_o(ln_x_ready),
    .x_data_i (xs_data),
    .y_valid_o(ln_y_valid),
    .y_ready_i(1'b1),
    .y_data_o (ln_y_data),
    .y_last_o (ln_y_last)
  );

  // ---------------------------------------------------------------- attention
  // Started with the q | k | v pass; a head is ready once its 3 * HeadDim / LinearOut tiles are
  // written (all heads at the pass's end when the tiles cannot go head by head).
  localparam int unsigned HeadTiles = HeadDim % LinearOut == 0 ? 3 * HeadDim / LinearOut : 3 * Dim / LinearOut;
  localparam int unsigned ReadyStep = HeadDim % LinearOut == 0 ? 1 : Heads;
  logic                     att_done, att_busy, att_re, att_we, att_finished_q;
  logic [QkvAddrBits-1:0]   att_ra;
  logic [TokenAddrBits-1:0] att_wa;
  logic [WordBits-1:0]      att_wd;
  logic [31:0]              head_tiles_q, heads_ready_q;

  attention_engine #(.Lanes(Lanes)) u_attention (
    .clk_i    (clk),
    .rst_i    (rst),
    .start_i  (entry_q && state_q == SQkv),
    .heads_ready_i(heads_ready_q),
    .done_o   (att_done),
    .busy_o   (att_busy),
    .rd_en_o  (att_re),
    .rd_addr_o(att_ra),
    .rd_data_i(q_rd),
    .wr_en_o  (att_we),
    .wr_addr_o(att_wa),
    .wr_data_o(att_wd)
  );

  // ---------------------------------------------------------------- router
  logic                          r_valid, a_valid, q_valid, a_last, q_last, r_last;
  logic [TokenBits-1:0]          r_token, q_token;
  logic [TopK*ExpertBits-1:0]    r_expert;
  logic [TopK*GateScoreBits-1:0] r_score;
  logic [ExpertBits-1:0]         a_expert, q_expert;
  logic [CountBits-1:0]          a_count;
  logic                          rx_valid, rx_ready, q_end;
  logic [31:0]                   lane_q;   // logit of the y beat being sent to the router
  logic [31:0]                   n_queued_q, start_sum_q;
  logic                          routed_q;  // the router's a and q streams have ended

  assign rx_valid = state_q == SGate && y_valid;
  moe_router u_router (
    .clk_i     (clk),
    .rst_i     (rst),
    .x_valid_i (rx_valid),
    .x_ready_o (rx_ready),
    .x_data_i  (y_data[32'(lane_q) * ActBits +: ActBits]),
    .r_valid_o (r_valid),
    .r_ready_i (1'b1),
    .r_token_o (r_token),
    .r_expert_o(r_expert),
    .r_score_o (r_score),
    .r_last_o  (r_last),
    .active_valid_o (a_valid),
    .active_ready_i (1'b1),
    .active_expert_o(a_expert),
    .active_count_o (a_count),
    .active_last_o  (a_last),
    .queue_valid_o (q_valid),
    .queue_ready_i (1'b1),
    .queue_expert_o(q_expert),
    .queue_token_o (q_token),
    .queue_end_o   (q_end),
    .queue_last_o  (q_last)
  );

  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      lane_q <= '0;
    end else if (rx_valid && rx_ready) begin
      lane_q <= lane_q == Experts - 1 ? '0 : lane_q + 1;
    end
  end

  logic a_done_q, q_done_q;
  always_ff @(posedge clk) begin
    if (rst || (entry_q && state_q == SGate)) begin
      n_active_q  <= '0;
      n_queued_q  <= '0;
      start_sum_q <= '0;
      a_done_q    <= 1'b0;
      q_done_q    <= 1'b0;
    end else begin
      if (a_valid) begin
        act_expert_q[n_active_q[ExpertBits-1:0]] <= a_expert;
        act_count_q[n_active_q[ExpertBits-1:0]]  <= a_count;
        act_start_q[n_active_q[ExpertBits-1:0]]  <= start_sum_q;
        start_sum_q <= start_sum_q + 32'(a_count);
        n_active_q  <= n_active_q + 1;
        if (a_last) a_done_q <= 1'b1;
      end
      if (q_valid) begin
        queue_q[n_queued_q] <= q_token;
        n_queued_q <= n_queued_q + 1;
        if (q_last) q_done_q <= 1'b1;
      end
    end
  end
  always_ff @(posedge clk) begin
    if (r_valid) begin
      for (int k = 0; k < TopK; k++) begin
        sel_expert_q[r_token][k] <= r_expert[k*ExpertBits +: ExpertBits];
        sel_score_q[r_token][k]  <= r_score[k*GateScoreBits +: GateScoreBits];
      end
    end
  end
  assign routed_q = a_done_q && q_done_q;

  // ---------------------------------------------------------------- y sink of the linear passes
  logic [31:0] yt_q, yr_q;  // tile and row of the next y beat
  logic        y_take, y_all_q;
  logic        y_write_acc, y_write_qkv, y_write_hid;
  logic [31:0] y_row;
  assign y_row = state_q == SExpertFc2 ? 32'(queue_q[l_qbase + yr_q])
               : state_q == SPatch ? yr_q + 1 : yr_q;
  // the router takes a gate row lane by lane; every other y beat is written in its cycle
  assign y_ready = is_linear && (state_q == SGate ? rx_ready && lane_q == Experts - 1 : 1'b1);
  assign y_take = y_valid && y_ready;
  assign y_write_acc = y_take && state_q inside {SPatch, SProj, SFc2, SExpertFc2};
  assign y_write_qkv = y_take && state_q == SQkv;
  assign y_write_hid = y_take && state_q inside {SFc1, SExpertFc1};

  logic [15:0] y_stored_tile;  // the storage index of tile yt_q
  tile_order u_y_order (
    .clk_i       (clk),
    .start_i     (rst || entry_q),
    .head_major_i(l_head_major),
    .advance_i   (y_take && yr_q == l_rows - 1),
    .tile_o      (y_stored_tile)
  );

  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      yt_q    <= '0;
      yr_q    <= '0;
      y_all_q <= 1'b0;
    end else if (y_take) begin
      yr_q <= yr_q == l_rows - 1 ? '0 : yr_q + 1;
      if (yr_q == l_rows - 1) begin
        yt_q <= yt_q + 1;
        if (yt_q == l_tiles - 1) y_all_q <= 1'b1;
      end
    end
  end

  // heads whose q | k | v tiles are written, for the attention beside the pass
  always_ff @(posedge clk) begin
    if (rst || (entry_q && state_q == SQkv)) begin
      head_tiles_q   <= '0;
      heads_ready_q  <= '0;
      att_finished_q <= 1'b0;
    end else begin
      if (y_take && state_q == SQkv && yr_q == l_rows - 1) begin
        head_tiles_q <= head_tiles_q == HeadTiles - 1 ? '0 : head_tiles_q + 1;
        if (head_tiles_q == HeadTiles - 1) heads_ready_q <= heads_ready_q + ReadyStep;
      end
      if (att_done) att_finished_q <= 1'b1;
    end
  end

  // ---------------------------------------------------------------- Store: x -> tokens
  logic               wr_cmd_valid, wr_cmd_ready, wr_d_valid, wr_d_ready;
  logic [AxiBits-1:0] wr_d_data;
  logic               store_cmd_q, store_sent_q;
  logic [31:0]        obeat_q;

  always_ff @(posedge clk) begin
    if (rst) begin
      store_cmd_q  <= 1'b0;
      store_sent_q <= 1'b0;
    end else if (entry_q && state_q == SStore) begin
      store_cmd_q  <= 1'b1;
      store_sent_q <= 1'b0;
    end else if (wr_cmd_valid && wr_cmd_ready) begin
      store_cmd_q  <= 1'b0;
      store_sent_q <= 1'b1;
    end
  end
  assign wr_cmd_valid = store_cmd_q;
  assign wr_d_valid = state_q == SStore && xs_valid;
  always_comb begin
    wr_d_data = '0;
    for (int k = 0; k < AxiBits / ActWordBits; k++) begin
      wr_d_data[k*ActWordBits +: ActWordBits] =
        ActWordBits'($signed(xs_data[(32'(obeat_q) * (AxiBits / ActWordBits) + k) * ActBits +: ActBits]));
    end
  end
  always_ff @(posedge clk) begin
    if (rst || entry_q) begin
      obeat_q <= '0;
    end else if (wr_d_valid && wr_d_ready) begin
      obeat_q <= obeat_q == OutBeats - 1 ? '0 : obeat_q + 1;
    end
  end

  axi_burst_writer #(
    .AddrBits(64), .DataBits(AxiBits), .MaxBurst(MaxBurst), .MaxOutstanding(MaxOutstanding)
  ) u_tokens (
    .clk_i        (clk),
    .rst_i        (rst),
    .cmd_valid_i  (wr_cmd_valid),
    .cmd_ready_o  (wr_cmd_ready),
    .cmd_addr_i   (tokens_q + 64'(image_q) * TokensBytes),
    .cmd_beats_i  (TokenBeats),
    .d_valid_i    (wr_d_valid),
    .d_ready_o    (wr_d_ready),
    .d_data_i     (wr_d_data),
    .error_o      (),
    .m_axi_awid   (m_axi_gmem2_awid),
    .m_axi_awaddr (m_axi_gmem2_awaddr),
    .m_axi_awlen  (m_axi_gmem2_awlen),
    .m_axi_awsize (m_axi_gmem2_awsize),
    .m_axi_awburst(m_axi_gmem2_awburst),
    .m_axi_awcache(m_axi_gmem2_awcache),
    .m_axi_awprot (m_axi_gmem2_awprot),
    .m_axi_awvalid(m_axi_gmem2_awvalid),
    .m_axi_awready(m_axi_gmem2_awready),
    .m_axi_wdata  (m_axi_gmem2_wdata),
    .m_axi_wstrb  (m_axi_gmem2_wstrb),
    .m_axi_wlast  (m_axi_gmem2_wlast),
    .m_axi_wvalid (m_axi_gmem2_wvalid),
    .m_axi_wready (m_axi_gmem2_wready),
    .m_axi_bid    (m_axi_gmem2_bid),
    .m_axi_bresp  (m_axi_gmem2_bresp),
    .m_axi_bvalid (m_axi_gmem2_bvalid),
    .m_axi_bready (m_axi_gmem2_bready)
  );

  // ---------------------------------------------------------------- stream hand-offs
  assign vec_take = state_q == SPos ? pos_take : is_ln && vec_word && vtotal_q < 2 * TokenWords;
  assign xs_ready = state_q inside {SResidAttn, SResidMlp} ? resid_take
                  : is_ln ? pcount_q == TokenWords && ln_x_ready
                  : state_q == SStore ? wr_d_ready && obeat_q == OutBeats - 1 : 1'b0;
  assign acc_s_ready = state_q == SExpertFc2 ? eng_accum_ready
                     : state_q == SPos ? pos_take : resid_take;

  // ---------------------------------------------------------------- buffer ports
  always_comb begin
    x_we = 1'b0;  x_wa = TokenAddrBits'(join_q);  x_wd = resid_sum;
    h_we = 1'b0;  h_wa = TokenAddrBits'(ln_y_q);  h_wd = ln_y_data;
    q_we = y_write_qkv;  q_wa = QkvAddrBits'(yr_q * QkvWords + 32'(y_stored_tile));  q_wd = y_data;
    hid_we = y_write_hid;  hid_wa = HiddenAddrBits'(yr_q * HiddenWords + yt_q);  hid_wd = y_data;
    acc_we = y_write_acc;  acc_wa = TokenAddrBits'(y_row * TokenWords + yt_q);  acc_wd = y_data;
    if (pos_take) begin
      x_we = 1'b1;
      x_wd = pos_sum;
    end
    if (resid_take) begin
      x_we   = 1'b1;
      acc_we = 1'b1;
      acc_wa = TokenAddrBits'(join_q);
      acc_wd = '0;
    end
    if (is_ln && ln_y_valid) h_we = 1'b1;
    if (att_we) begin
      hid_we = 1'b1;
      hid_wa = HiddenAddrBits'(att_wa);
      hid_wd = att_wd;
    end
    x_re = x_stream_re;
    x_ra = x_stream_ra;
    h_re = src_re && !l_src_hid;
    h_ra = TokenAddrBits'(src_ra);
    hid_re = src_re && l_src_hid;
    hid_ra = HiddenAddrBits'(src_ra);
    q_re = att_re;
    q_ra = att_ra;
    acc_re = acc_stream_re;
    acc_ra = acc_stream_ra;
  end

`ifndef SYNTHESIS
  // the units' own framing agrees with the schedule's counters
  logic [31:0] vec_words;  // words of one vector read: pos_embed of every token, or gamma or beta
  assign vec_words = (state_q == SPos ? Tokens : 1) * TokenWords;
  always_ff @(posedge clk) begin
    if (!rst) begin
      if (y_take && y_last != (yr_q == l_rows - 1)) $error("%m: y_last away from a tile's last row");
      if (is_ln && ln_y_valid && ln_y_last != (ln_y_q % TokenWords == TokenWords - 1)) begin
        $error("%m: LayerNorm y_last off a token's end");
      end
      if (vec_valid && vec_ready && vec_last && vtotal_q % vec_words != vec_words - 1) begin
        $error("%m: a vector read ended early");
      end
      if (r_valid && r_last && 32'(r_token) != Tokens - 1) begin
        $error("%m: the router's last token is %0d", r_token);
      end
      if (q_valid && q_end && 32'(q_expert) >= Experts) $error("%m: queue of expert %0d", q_expert);
    end
  end
`endif

  // ---------------------------------------------------------------- performance counters
  // Cleared when a call is taken, counting while it runs, held until the next call.
  logic [63:0] count_q [PerfCounters];
  logic [63:0] count_inc [PerfCounters];
  logic        read_beats0, read_beats1, write_beats;
  assign read_beats0 = m_axi_gmem0_rvalid && m_axi_gmem0_rready;
  assign read_beats1 = m_axi_gmem1_rvalid && m_axi_gmem1_rready;
  assign write_beats = m_axi_gmem2_wvalid && m_axi_gmem2_wready;
  always_comb begin
    count_inc[PerfCycles]        = 64'(!ap_idle);
    count_inc[PerfLinearBusy]    = 64'(mac_busy);
    count_inc[PerfAttentionBusy] = 64'(att_busy);
    count_inc[PerfLayernormBusy] = 64'(is_ln);
    count_inc[PerfRouterBusy]    = 64'(state_q == SGate);
    count_inc[PerfNonlinearBusy] = 64'(y_take && state_q inside {SFc1, SExpertFc1});
    count_inc[PerfBytesRead]     = (64'(read_beats0) + 64'(read_beats1)) * 64'(AxiBits / 8);
    count_inc[PerfBytesWritten]  = 64'(write_beats) * 64'(AxiBits / 8);
    count_inc[PerfMemoryStall]   = 64'(weight_wait
                                       || (!vec_cmd_ready && vec_ready && !vec_valid)
                                       || (!img_cmd_ready && img_ready && !img_valid)
                                       || (m_axi_gmem2_wvalid && !m_axi_gmem2_wready));
  end
  for (genvar c = 0; c < PerfCounters; c++) begin : gen_counters
    always_ff @(posedge clk) begin
      if (rst || (state_q == SIdle && ap_start)) begin
        count_q[c] <= '0;
      end else begin
        count_q[c] <= count_q[c] + count_inc[c];
      end
    end
    assign counters[64*c +: 64] = count_q[c];
  end

  // ---------------------------------------------------------------- end of a pass
  always_comb begin
    unique case (state_q)
      SPos, SResidAttn, SResidMlp: pass_done = join_q == Tokens * TokenWords;
      SLn1, SLn2:                  pass_done = ln_y_q == Tokens * TokenWords;
      SAtt:                        pass_done = att_finished_q;
      SGate:                       pass_done = y_all_q && routed_q;
      SStore:                      pass_done = store_sent_q && wr_cmd_ready;
      SIdle, SDone:                pass_done = 1'b0;
      default:                     pass_done = y_all_q && !cmd_pending_q;
    endcase
    if (entry_q) pass_done = 1'b0;
  end
endmodule

`default_nettype wire
