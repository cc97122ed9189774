"""Bit-exact fixed-point model of the accelerator: the numeric contract every back end equals."""
