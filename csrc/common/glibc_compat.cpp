// What keeps the extension loadable on glibc 2.28 (manylinux_2_28, the tag of torch's own
// wheels) when it is built on a newer system: without it the build machine's glibc decides
// the oldest system the wheel installs on (bench/RESULTS.md, "Wheels on older systems").
// Only two references need a newer glibc than 2.28, both bound here to what 2.28 has; the
// OpenMP runtime is torch's own libgomp (scripts/wheel_check.sh leaves it out of the wheel).

#include <climits>  // defines __GLIBC__ on glibc systems

#if defined(__GLIBC__) && defined(__x86_64__)
extern "C" {

// libstdc++'s headers (GCC 11+) test glibc 2.32's __libc_single_threaded to skip atomic
// reference counts while a process has one thread. A constant "not single-threaded" only
// gives up that shortcut (the counts stay atomic, as they are once torch's thread pools
// start). Hidden: it binds inside the extension and never shadows glibc's.
__attribute__((visibility("hidden"))) char __libc_single_threaded = 0;

// glibc 2.29 gave pow a new symbol version (the same function, without SVID error
// handling). setup.py links with --wrap=pow on x86-64 glibc, so every call of pow lands
// here and goes to the version glibc has had since 2.2.5; results are bitwise the same.
// (The CMake library, built where it runs, keeps the default binding and leaves this
// wrapper unused.)
double sb_native_pow_2_2_5(double base, double exponent);
__asm__(".symver sb_native_pow_2_2_5, pow@GLIBC_2.2.5");
double __wrap_pow(double base, double exponent) { return sb_native_pow_2_2_5(base, exponent); }

}  // extern "C"
#endif
