"""Training and evaluation data: sources (dataset layouts), synthetic scenes, augmentation,
`.flo` files, folder checks and the training Dataset.

Import the submodules directly (``emavfi.data.sources``, ``emavfi.data.dataset``, ...); this
package imports nothing heavy on its own.
"""
