"""Optical flow computed outside the networks (OpenCV DIS): a layer below models and engines.

It imports nothing from the package, so that the classical engine, EMA-VFI's ``flow_init="dis"``
warm start and the training teacher can all use it without models importing engines.
"""
