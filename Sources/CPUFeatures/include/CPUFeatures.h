#ifndef NORMLAB_CPU_FEATURES_H
#define NORMLAB_CPU_FEATURES_H

/// 1 if this processor and operating system run AVX-512 (F, BW, DQ, VL: the Skylake-server set
/// that the wide matrix kernels are compiled for), 0 otherwise. The compiler runtime's check
/// covers both: the CPUID bits and the OS saving the 512-bit registers.
int normlab_runs_avx512(void);

/// The processors this process may run on: its CPU affinity mask where the system has one
/// (`taskset`, a batch system's binding), else the online processors; at least 1.
int normlab_available_processors(void);

#endif
