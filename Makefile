# sisfeed -- build, check, bench, demo, install.
# Every library is found with pkg-config.

CC	?= cc
PKG_CONFIG ?= pkg-config
PREFIX	?= /usr/local
DESTDIR	?=
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
DATADIR	?= $(PREFIX)/share/sisfeed
SYSCONFDIR ?= /etc
ETCDIR	?= $(SYSCONFDIR)/sisfeed
# systemd's own directories where it says them, else the usual ones.
SYSTEMD_UNITDIR ?= $(shell $(PKG_CONFIG) --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
SYSUSERSDIR ?= $(shell $(PKG_CONFIG) --variable=sysusersdir systemd 2>/dev/null || echo /usr/lib/sysusers.d)
TMPFILESDIR ?= $(shell $(PKG_CONFIG) --variable=tmpfilesdir systemd 2>/dev/null || echo /usr/lib/tmpfiles.d)
# Written into the unit's ReadWritePaths= (each may be absent).
DELIVERYDIR ?= /srv/sisfeed
METRICSDIR ?= /var/lib/prometheus/node-exporter
# The binary make install installs (the tests install the test build).
PROG	?= sisfeed

PKGS	 = libxml-2.0 zlib yaml-0.1 libssh2 libcurl libzip
# ISA-L's igzip compresses the gzip output about 5 times as fast as
# zlib (lib/zchunk.c); without it (ISAL=no, or no libisal) zlib does.
ISAL	?= $(shell $(PKG_CONFIG) --exists libisal && echo yes)
ifeq ($(ISAL),yes)
PKGS	+= libisal
PKG_DEFS = -DHAVE_ISAL
endif
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS)) $(PKG_DEFS)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS)) -lpthread -lm
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS   := $(shell $(PKG_CONFIG) --libs check 2>/dev/null)

# -Werror only in the test build: a new compiler's new warning must not
# stop a release build.
WARN	 = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
STD	 = -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
OPT	?= -O2 -g
CFLAGS	?=
CPPFLAGS ?=
SAN	 = -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ALL_CFLAGS = $(STD) $(CPPFLAGS) $(WARN) $(OPT) -I. $(PKG_CFLAGS) $(CFLAGS)

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

$(B)/test/check_%: $(B)/test/tests/check_%.o $(B)/test/tests/testutil.o $(B)/test/tests/receiver.o $(B)/test/libsisfeed.a
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $^ $(CHECK_LIBS) $(PKG_LIBS)

# check_lib also runs the zlib engine of lib/zchunk.c when sisfeed uses
# ISA-L: the same file built without HAVE_ISAL under other names;
$(B)/test/check_lib: $(B)/test/lib/zchunk_zlib.o
$(B)/test/lib/zchunk_zlib.o: lib/zchunk.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -UHAVE_ISAL -Dzchunk_new=zlibchunk_new \
	    -Dzchunk_free=zlibchunk_free -Dzchunk_compress=zlibchunk_compress \
	    -Dzchunk_bound=zlibchunk_bound -Dzchunk_engine=zlibchunk_engine \
	    -O1 -c -o $@ $<

# and the fold of lib/crc.c, which ISA-L's CRC replaces there.
$(B)/test/check_lib: $(B)/test/lib/crc_fold.o
$(B)/test/lib/crc_fold.o: lib/crc.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) -UHAVE_ISAL -Dcrc_update=foldcrc_update \
	    -O1 -c -o $@ $<

$(B)/test/tests/testutil.o: tests/testutil.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(SAN) $(CHECK_CFLAGS) -O1 -c -o $@ $<

# `make check` builds everything under the sanitizers and runs every
# Check suite; tests/run-tests prints the closing "N passed, N failed".
# Then, when clang is there, each fuzz target for CHECK_FUZZ_SECONDS
# (0: its corpus once, as regression inputs).
CHECK_FUZZ_SECONDS ?= 30
check: lint-man verify-units $(B)/test/sisfeed $(TESTS)
	SISFEED_BIN=$(CURDIR)/$(B)/test/sisfeed SISFEED_TOP=$(CURDIR) \
	    ./tests/run-tests $(TESTS)
	@if command -v $(FUZZ_CC) >/dev/null 2>&1; then \
	    $(MAKE) fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS); \
	else echo "fuzz: $(FUZZ_CC) not found: skipped"; fi

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
FUZZ_TARGETS = csv oneroster ims snap config rindex sftp
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

# The IMS DTD and the PIFU-IMS XSD built into the binary (sisfeed
# validate), as C strings: regenerate formats/ims_dtd.c and
# formats/pifu_xsd.c after changing them (check_ims compares them).
DTD	 = tests/data/ims/ims_epv1p1.dtd
XSD	 = tests/data/ims/PIFU-IMS_SAS.xsd
# $(call cstring,FILE,NAME,OUT): FILE as the C string NAME (and NAME_len)
# in OUT.
define cstring
	{ printf '/* Generated from %s by make dtd; do not edit. */\n' \
	    '$(1)'; printf '#include "sisfeed.h"\n\n'; \
	  printf 'const char $(2)[] =\n'; \
	  sed 's/\\/\\\\/g; s/"/\\"/g; s/\t/\\t/g; s/\r$$/\\r/; s/??/?\\?/g; s/^/\t"/; s/$$/\\n"/' \
	    $(1); printf '\t;\nconst size_t $(2)_len = sizeof($(2)) - 1;\n'; \
	} > $(3).tmp && mv $(3).tmp $(3)
endef
dtd:
	$(call cstring,$(DTD),ims_dtd,formats/ims_dtd.c)
	$(call cstring,$(XSD),pifu_xsd,formats/pifu_xsd.c)

# --- benchmarks (not part of check) ----------------------------------------
bench: sisfeed
	./bench/run-bench
	./bench/run-bench-readers

# the three readers side by side (CSV, OneRoster, IMS): BENCH_READERS="P G M"
bench-readers: sisfeed
	./bench/run-bench-readers
	./bench/run-bench-moodle

bench-sftp: sisfeed
	./bench/run-bench-sftp

demo: sisfeed
	./etc/demo

# --- install ----------------------------------------------------------------
# Units and the cron file get the real paths of this install:
# $(call subst_paths,BINDIR) is the sed command for etc/*.in.
subst_paths = sed -e 's|@BINDIR@|$(1)|g' -e 's|@ETCDIR@|$(ETCDIR)|g' \
	-e 's|@DELIVERYDIR@|$(DELIVERYDIR)|g' -e 's|@METRICSDIR@|$(METRICSDIR)|g'
UNITS_IN = sisfeed.service sisfeed@.service sisfeed-failed@.service

install: $(PROG)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(DATADIR) \
	    $(DESTDIR)$(SYSTEMD_UNITDIR) $(DESTDIR)$(SYSUSERSDIR) \
	    $(DESTDIR)$(TMPFILESDIR)
	install -d -m 0750 $(DESTDIR)$(ETCDIR)
	install -m 0755 $(PROG) $(DESTDIR)$(BINDIR)/sisfeed
	install -m 0644 man/sisfeed.8 $(DESTDIR)$(MANDIR)/man8/sisfeed.8
	install -m 0644 man/sisfeed.yaml.5 $(DESTDIR)$(MANDIR)/man5/sisfeed.yaml.5
	install -m 0640 etc/sisfeed.yaml.example $(DESTDIR)$(ETCDIR)/sisfeed.yaml.example
	for u in $(UNITS_IN); do \
	    $(call subst_paths,$(BINDIR)) etc/$$u.in > \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/$$u && \
	    chmod 0644 $(DESTDIR)$(SYSTEMD_UNITDIR)/$$u || exit 1; done
	install -m 0644 etc/sisfeed.timer etc/sisfeed@.timer \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/
	install -m 0644 etc/sisfeed.sysusers $(DESTDIR)$(SYSUSERSDIR)/sisfeed.conf
	install -m 0644 etc/sisfeed.tmpfiles $(DESTDIR)$(TMPFILESDIR)/sisfeed.conf
	$(call subst_paths,$(BINDIR)) etc/sisfeed.cron.in > \
	    $(DESTDIR)$(DATADIR)/sisfeed.cron
	chmod 0644 $(DESTDIR)$(DATADIR)/sisfeed.cron

# Removes what install put there; a config the admin wrote stays.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/sisfeed $(DESTDIR)$(MANDIR)/man8/sisfeed.8 \
	    $(DESTDIR)$(MANDIR)/man5/sisfeed.yaml.5 \
	    $(DESTDIR)$(ETCDIR)/sisfeed.yaml.example \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sisfeed.service \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sisfeed@.service \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sisfeed-failed@.service \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sisfeed.timer \
	    $(DESTDIR)$(SYSTEMD_UNITDIR)/sisfeed@.timer \
	    $(DESTDIR)$(SYSUSERSDIR)/sisfeed.conf \
	    $(DESTDIR)$(TMPFILESDIR)/sisfeed.conf \
	    $(DESTDIR)$(DATADIR)/sisfeed.cron
	-rmdir $(DESTDIR)$(DATADIR) $(DESTDIR)$(ETCDIR) 2>/dev/null

# systemd-analyze verify and security on the units (generated with
# the test build's directory as BINDIR, so the binary exists), where
# systemd is; `make check` runs it.
verify-units: $(B)/test/sisfeed
	@if ! command -v systemd-analyze >/dev/null 2>&1; then \
	    echo "verify-units: no systemd-analyze here"; exit 0; fi; \
	d=$$(mktemp -d) || exit 1; \
	for u in $(UNITS_IN); do \
	    $(call subst_paths,$(CURDIR)/$(B)/test) etc/$$u.in > "$$d/$$u"; \
	done; \
	cp etc/sisfeed.timer etc/sisfeed@.timer "$$d"/; \
	SYSTEMD_LOG_LEVEL=notice systemd-analyze verify --man=no \
	    "$$d"/sisfeed.service "$$d"/sisfeed.timer "$$d"/sisfeed@site.service \
	    "$$d"/sisfeed@site.timer; rc=$$?; \
	systemd-analyze security --offline=true --threshold=25 \
	    "$$d"/sisfeed.service > "$$d"/security; rc2=$$?; \
	tail -n 1 "$$d"/security; \
	rm -rf "$$d"; [ $$rc -eq 0 ] && [ $$rc2 -eq 0 ]

clean:
	rm -rf build sisfeed

.PHONY: all check lint-man valgrind bench bench-sftp demo install clean dtd \
	bench-readers fuzz fuzz-build uninstall verify-units
.SECONDARY:
