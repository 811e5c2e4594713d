"""The data set as the stages read it, its augmentation and its batches on the training device."""
