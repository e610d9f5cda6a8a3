/* CIFAR-10 and CIFAR-100 binary batches (data_batch_N.bin, test_batch.bin, train.bin, test.bin). */
#ifndef CULL_CIFAR_H
#define CULL_CIFAR_H

#include <stddef.h>

#include "io.h"

#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_SIDE * CIFAR_SIDE * 3)

/* A loaded batch file: count records of 1 label byte (CIFAR-10) or 2 (CIFAR-100: coarse,
 * fine) followed by 3072 bytes of pixels as three 32x32 planes R, G, B. */
typedef struct {
	const char *name;       /* display name (the path given, not copied) */
	int variant;            /* 10 or 100 */
	size_t count;
	size_t record_size;     /* 3073 or 3074 */
	unsigned char *data;
} cifar_file;

/* Load a batch, plain or compressed. variant 0 detects 10 or 100 from the size (a multiple
 * of 3073 or 3074 bytes) and, when both fit, from the label ranges. Returns 0, or -1 with
 * f empty and one line in e naming the file and offset (EXIT_DATA; EXIT_IO when it cannot
 * be opened): a size that fits neither layout, an empty file, a label out of range. */
int cifar_load(cifar_file *f, const char *path, int variant, cull_err *e);
void cifar_free(cifar_file *f);

/* The class of record i: the label (CIFAR-10) or the fine label (CIFAR-100). */
int cifar_label(const cifar_file *f, size_t i);
/* The coarse label of record i (CIFAR-100), or -1 for CIFAR-10. */
int cifar_coarse(const cifar_file *f, size_t i);
/* The pixels of record i as 32x32 interleaved RGB (CIFAR_PIXELS bytes into rgb). */
void cifar_pixels(const cifar_file *f, size_t i, unsigned char *rgb);

/* The ten CIFAR-10 class names in label order. */
extern const char *const cifar10_classes[10];
/* The class names of a batch file `batch` ("-": standard input) of this variant, from the
 * label-names file beside it (batches.meta.txt, or fine_label_names.txt for CIFAR-100)
 * when it has exactly 10 or 100 non-empty lines; else CIFAR-10's names above, or NULL for
 * CIFAR-100. 10 or 100 malloc'd strings. */
char **cifar_class_names(int variant, const char *batch);

#endif
