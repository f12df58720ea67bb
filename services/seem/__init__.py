"""The seem worker: interactive segmentation (SAM + Grounding DINO, or GrabCut) standing in
for SEEM. See docs/SEEM.md."""
