"""Sources of the Python-backend models; the repository generator copies them into each model's version folder.

Ensemble steps (numpy runtime, and the stages ahead of the onnx/TensorRT trunks): `text_embed.py`, `image_embed.py`
(numpy, or torch through `tipsv2_embed_torch.py`), `onnx_trunk.py`. The torch runtime's fused models: `fused.py`,
one source for both modalities, doing the whole forward through `tipsv2_fused_torch.py`.

What they may import: the numpy files import only numpy, safetensors and onnxruntime (never this project), so they
also run inside NVIDIA's own Triton container; `tipsv2_stages.py` holds the math shared by the embedding stages,
`tipsv2_stages_torch.py` its torch form with the device-resident adapter bank. The fused models are the exception:
they load the model library's towers (`training.export.torch_trunk`) from the project, whose root the generator
writes into their config (`project_root`), so they run where the project is installed.
"""
