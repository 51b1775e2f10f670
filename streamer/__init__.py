"""streamer: a real-time music genre analyzer.

The runtime package. It never imports TensorFlow, and importing it stays cheap: heavy
modules (numpy, scipy, librosa, sounddevice) load only in the submodules that need them.
"""

__version__ = "0.1.0"
