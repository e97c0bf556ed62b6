"""The models actsearch ships, as factories on the same path as a user's own model.

Each module builds one kind of network (``mlp``, ``cnn``, ``resnet``, ``gated``); a space file
names one as ``model.factory: actsearch.zoo.<module>:<function>``, exactly as it would name a
user's factory.
"""
