"""scipy.stats rewritten as differentiable TensorFlow ops."""
