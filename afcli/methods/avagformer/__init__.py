"""AVAGFormer (../shared/papers/avagformer-audio-visual-affordance.md): segment an object's function
and dependency regions in an image from the sound of an action. ``afcli finetune avagformer`` on an
image store (``afcli data import --benchmark avagd``, or the built-in ``afcli data synth-av`` set)."""
