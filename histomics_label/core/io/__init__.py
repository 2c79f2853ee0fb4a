"""What the engine reads and writes: slides (through large_image), the HDF5 slide store, label files, the segment-id
TIFF, DSA annotation documents and the output files of a run."""
