"""Pooling modules (MaxPool2d, AvgPool2d, ...): written by the pooling engineer."""
