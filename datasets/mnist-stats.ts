/** MNIST's pixel mean and standard deviation (docs/method.md §8), applied to pixels in [0, 1]. */
export const MNIST_MEAN = 0.1307;
export const MNIST_STD = 0.3081;
