"""Export of the TIPSv2 towers for serving: ONNX trunks (checked against PyTorch), torch towers, embedding-stage
weights, and the manifest naming them (`artifacts.py`). Export ends at that folder and knows nothing of Triton:
the serving side (`service.triton`) turns it into a model repository."""
