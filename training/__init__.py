"""Everything that makes TIPSv2 models: the model library (`training.tipsv2`), the training recipe, AdaLink
adapter training, and export to ONNX / TensorRT.

The model library is importable without the training harness; its tokenizer, preprocessing and config modules are
importable without torch, which is how the torch-free gateway shares them.
"""
