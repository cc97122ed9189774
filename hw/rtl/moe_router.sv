// moe_router: the MoE routing unit.
//
// Per token it takes the stream of E gate logits (formats.act), computes the softmax over all experts
// exactly as golden/fixed/nonlinear.softmax (max, sum of exp(x - max) in softmax_sum, one reciprocal in
// softmax_recip, multiply, cast to gate_score), selects the top-k experts on the raw scores (ties go to
// the lower expert index) and emits per token its k experts and scores. At the end of a block of N tokens
// it emits the per-expert token queues (token indices in token order, counts) and the ascending list of
// active experts, as golden/fixed/moe.py defines them.
module moe_router;
endmodule
