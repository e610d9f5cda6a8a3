/* A class-folder tree (ROOT/CLASS/.../IMAGE, torchvision's ImageFolder): its classes and image files, sorted. */
#ifndef CULL_CLASSDIR_H
#define CULL_CLASSDIR_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	char **classes;        /* the class directories' names, sorted: class i is classes[i] */
	size_t nclasses;
	char **paths;          /* the images, relative to the root (CLASS/.../NAME), class by
	                          class, each directory's entries in strcmp order */
	int *labels;           /* [n] the class of each image */
	size_t n;
} classdir;

/* The lower-cased extension of a file name if it is an image's (jpg, png, webp, ...),
 * else NULL. */
const char *image_ext(const char *name);

/* Lists the tree at root. Its subdirectories are the classes (any other entry is skipped
 * with a warning); every regular file with an image extension below a class directory, at
 * any depth, is an image of that class. Names starting with '.' are left out. An image
 * over max_size bytes (a shard reader's member limit) and an entry that cannot be examined
 * are skipped with a warning each; the other files are counted in one warning. Returns 0,
 * or -1 with "DIR: reason" in err (a directory that cannot be read; the exit status is
 * EXIT_IO) and d empty. */
int classdir_open(classdir *d, const char *root, uint64_t max_size, char *err, size_t errlen);
void classdir_free(classdir *d);

#endif
