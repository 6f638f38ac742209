"""The local web page of ``emavfi ui`` (the optional ``ui`` extra): see ``emavfi.ui.page``."""
