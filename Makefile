# sisfeed -- build, check, bench, demo, install.
# Every library is found with pkg-config.

CC	?= cc
PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	 = $(PREFIX)/bin
MANDIR	 = $(PREFIX)/share/man
ETCDIR	?= /etc/sisfeed

PKGS	 = libxml-2.0 zlib yaml-0.1 libssh2 libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

WARN	 = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
STD	 = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT	?= -O2 -g
CFLAGS	?=
SAN	 = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_CFLAGS = $(STD) $(WARN) $(OPT) -I. $(PKG_CFLAGS) $(CFLAGS)

LIB_SRC	 = $(sort $(filter-out agent/main.c, $(wildcard lib/*.c formats/*.c filters/*.c agent/*.c)))
TEST_SRC = $(sort $(wildcard tests/check_*.c))
HDR	 = sisfeed.h $(wildcard tests/*.h)

# Release build in $(B)/, test build (sanitizers) in $(B)/test/.
B	?= build
LIB_OBJ	 = $(LIB_SRC:%.c=$(B)/%.o)
TLIB_OBJ = $(LIB_SRC:%.c=$(B)/test/%.o)
TESTS	 = $(TEST_SRC:tests/%.c=$(B)/test/%)

all: sisfeed

sisfeed: $(B)/agent/main.o $(B)/libsisfeed.a
	$(CC) $(ALL_CFLAGS) -o $@ $(B)/agent/main.o $(B)/libsisfeed.a $(PKG_LIBS) $(LDFLAGS)

$(B)/libsisfeed.a: $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

$(B)/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# --- tests -----------------------------------------------------------------
$(B)/test/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) $(CHECK_CFLAGS) -O1 -c -o $@ $<

$(B)/test/libsisfeed.a: $(TLIB_OBJ)
	rm -f $@
	ar rcs $@ $(TLIB_OBJ)

$(B)/test/sisfeed: $(B)/test/agent/main.o $(B)/test/libsisfeed.a
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(PKG_LIBS)

$(B)/test/check_%: $(B)/test/tests/check_%.o $(B)/test/tests/testutil.o $(B)/test/libsisfeed.a
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS)

$(B)/test/tests/testutil.o: tests/testutil.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) $(CHECK_CFLAGS) -O1 -c -o $@ $<

# `make check` builds everything under the sanitizers and runs every
# Check suite; tests/run-tests prints the closing "N passed, N failed".
check: lint-man $(B)/test/sisfeed $(TESTS)
	SISFEED_BIN=$(CURDIR)/$(B)/test/sisfeed SISFEED_TOP=$(CURDIR) \
	    ./tests/run-tests $(TESTS)

# man pages must be clean under mandoc -Tlint.
lint-man:
	mandoc -Tlint -W warning man/sisfeed.8 man/sisfeed.yaml.5

valgrind: sisfeed
	./tests/valgrind-demo

# --- fuzzing: libFuzzer targets, built with clang in $(B)/fuzz/ -------------
# `make fuzz` runs each target for FUZZ_SECONDS on its seed corpus
# (fuzz/corpus/NAME, in git) plus what it finds ($(B)/fuzz/corpus/NAME).
FUZZ_CC	?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS = csv oneroster ims config rindex sftp
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
	    -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_OBJ = $(LIB_SRC:%.c=$(B)/fuzz/%.o) $(B)/fuzz/fuzz/fuzzutil.o
FUZZ_BIN = $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

$(B)/fuzz/%.o: %.c $(HDR) fuzz/fuzzutil.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(STD) $(WARN) -I. $(PKG_CFLAGS) $(FUZZ_FLAGS) -c -o $@ $<

$(B)/fuzz/fuzz_%: $(B)/fuzz/fuzz/fuzz_%.o $(FUZZ_OBJ)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $^ $(PKG_LIBS)

fuzz-build: $(FUZZ_BIN)

fuzz: fuzz-build
	B=$(B) ./fuzz/run-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The IMS DTD built into the binary (sisfeed validate), as a C string:
# regenerate formats/ims_dtd.c after changing the DTD (check_ims compares
# the two).
DTD	 = tests/data/ims/ims_epv1p1.dtd
dtd:
	{ printf '/* Generated from %s by make dtd; do not edit. */\n' \
	    '$(DTD)'; printf '#include "sisfeed.h"\n\n'; \
	  printf 'const char ims_dtd[] =\n'; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/\\t/g; s/\r$$/\\r/; s/??/?\\?/g; s/^/\t"/; s/$$/\\n"/' \
	    $(DTD); printf '\t;\nconst size_t ims_dtd_len = sizeof(ims_dtd) - 1;\n'; \
	} > formats/ims_dtd.c.tmp && mv formats/ims_dtd.c.tmp formats/ims_dtd.c

# --- benchmarks (not part of check) ----------------------------------------
bench: sisfeed
	./bench/run-bench
	./bench/run-bench-moodle

bench-sftp: sisfeed
	./bench/run-bench-sftp

demo: sisfeed
	./etc/demo

install: sisfeed
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(MANDIR)/man5
	install -m 0755 sisfeed $(DESTDIR)$(BINDIR)/sisfeed
	install -m 0644 man/sisfeed.8 $(DESTDIR)$(MANDIR)/man8/sisfeed.8
	install -m 0644 man/sisfeed.yaml.5 $(DESTDIR)$(MANDIR)/man5/sisfeed.yaml.5
	install -d $(DESTDIR)$(PREFIX)/share/sisfeed
	install -m 0644 etc/sisfeed.yaml.example etc/sisfeed.service etc/sisfeed.timer \
	    etc/sisfeed.cron $(DESTDIR)$(PREFIX)/share/sisfeed/

clean:
	rm -rf build sisfeed

.PHONY: all check lint-man valgrind bench bench-sftp demo install clean dtd \
	fuzz fuzz-build
.SECONDARY:
