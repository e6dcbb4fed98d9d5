"""Benchmarks that print figures: training and evaluation throughput, predict's memory.
The top floor: may import anything in rocksr."""
