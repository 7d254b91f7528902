"""Serving-side Triton tooling (torch-free): typed model configs, the model-repository generator, and a launcher
for the real `tritonserver` bundled in NVIDIA's PyTriton wheel."""
