"""Export of the TIPSv2 towers for serving: ONNX trunks, embedding-stage weights, TensorRT engines."""
