"""Host runtime on the pynq API: drives a board or a simulated device with the same code.

* :mod:`~edgemoe.host.layout`: the register map and memory layout (one definition;
  :mod:`edgemoe.emit_layout` generates ``edgemoe_layout.h`` and ``edgemoe_layout_pkg.sv`` from it);
* :mod:`~edgemoe.host.packing`: weights, images and tokens into and out of that layout;
* :mod:`~edgemoe.host.driver`: ``EdgeMoeIP`` (the ``DefaultIP`` bound by VLNV) and ``Accelerator``;
* :mod:`~edgemoe.host.device`: ``SimDevice``, a ``pynq.Device`` whose engine (fixed reference,
  C-simulated top) runs when ap_start is written;
* :mod:`~edgemoe.host.runtime`: the ``csim``, ``sim-reference`` and ``board`` back ends of
  ``edgemoe infer``;
* :mod:`~edgemoe.host.vitis`: the generated inputs of the Vitis HLS / Vivado flow.
"""
