"""Simulation runners and cocotb testbenches for the RTL."""
