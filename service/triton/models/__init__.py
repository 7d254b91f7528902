"""Sources of the Python-backend models; the repository generator copies them into each model's version folder.

They import only numpy, safetensors and onnxruntime (never this package), so they also run inside NVIDIA's own
Triton container. `tipsv2_stages.py` holds the math shared by the embedding stages.
"""
