/* The musl-libm lever's effect on results: the math functions libpython calls, on the same
 * 20,000 pseudo-random inputs each, one line per result (its bits in hex). Built twice, with
 * glibc's libm and with the interpreter build's archive of musl's (bench/README.md says how),
 * the two outputs are compared line by line. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t state = 88172645463325252ull;

static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static double bits(void) { /* any double: NaNs, infinities and subnormals included */
    uint64_t b = next();
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static double between(double lo, double hi) {
    return lo + (hi - lo) * ((next() >> 11) * (1.0 / 9007199254740992.0));
}

#define OUT(name, expr)                                     \
    do {                                                    \
        double r = (expr);                                  \
        uint64_t b;                                         \
        memcpy(&b, &r, sizeof b);                           \
        printf("%s %016llx\n", name, (unsigned long long)b); \
    } while (0)

int main(void) {
    for (int i = 0; i < 20000; i++) {
        double x = between(-10, 10), y = between(-10, 10), a = between(-1, 1);
        double p = between(0, 100), w = bits(), ip, s, c;
        int e;
        OUT("acos", acos(a)); OUT("asin", asin(a)); OUT("atan", atan(x));
        OUT("atan2", atan2(x, y)); OUT("acosh", acosh(p + 1)); OUT("asinh", asinh(x));
        OUT("atanh", atanh(a)); OUT("cbrt", cbrt(x * 1e3)); OUT("cos", cos(x * 100));
        OUT("sin", sin(x * 100)); OUT("tan", tan(x)); OUT("cosh", cosh(x));
        OUT("sinh", sinh(x)); OUT("tanh", tanh(x)); OUT("erf", erf(x / 3));
        OUT("erfc", erfc(x / 3)); OUT("exp", exp(x * 50)); OUT("exp2", exp2(x * 50));
        OUT("expm1", expm1(a)); OUT("log", log(p)); OUT("log10", log10(p));
        OUT("log1p", log1p(a)); OUT("log2", log2(p)); OUT("pow", pow(p, y));
        OUT("fmod", fmod(x * 1e5, y)); OUT("hypot", hypot(x, y)); OUT("sqrt", sqrt(p));
        OUT("floor", floor(x)); OUT("ceil", ceil(x)); OUT("round", round(x));
        OUT("nextafter", nextafter(x, y)); OUT("copysign", copysign(x, y));
        OUT("fabs", fabs(w)); OUT("frexp", frexp(w, &e)); OUT("ldexp", ldexp(x, (int)y * 10));
        OUT("modf", modf(x, &ip));
        sincos(x, &s, &c);
        OUT("sincos.sin", s);
        OUT("sincos.cos", c);
    }
    return 0;
}
