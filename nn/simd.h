/* NN_CLONES: compile a hot memory-bound loop for AVX-512, AVX2 and baseline x86-64 and
 * pick one when the program loads (GCC function multiversioning), so one binary runs on
 * any x86-64 and uses the vector width the CPU has. The arithmetic is the same in every
 * clone (no FMA contraction in ISO C mode, fixed lane counts in reductions), so results
 * are bit-identical whichever runs. */
#ifndef CULL_SIMD_H
#define CULL_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_ADDRESS__)
#define NN_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define NN_CLONES
#endif

#endif
