"""The CIFAR-10-C corruptions by name, as the published set names its files (`<name>.npy`): the 15 of the
benchmark, whose mean is the published corruption accuracy, and the 4 extras, reported beside it."""

BENCHMARK = ("gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur",
             "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate",
             "jpeg_compression")
EXTRAS = ("speckle_noise", "gaussian_blur", "spatter", "saturate")
SEVERITIES = (1, 2, 3, 4, 5)  # the benchmark's convention: its mean is over all five
