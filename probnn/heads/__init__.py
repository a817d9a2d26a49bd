"""Distribution heads: Keras 3 layers whose output parameterises a TFP distribution."""
