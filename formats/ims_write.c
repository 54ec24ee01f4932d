/*
 * ims_write.c -- write a roster as IMS Enterprise 1.1 XML, in full or
 * as a delta of recstatus changes.
 *
 * The output profile is the one of FORMAT.md section 12: UTF-8 without
 * a BOM, LF line ends, one element per line indented by two spaces,
 * <enterprise> without a namespace or DOCTYPE, and the DTD's order
 * properties, person*, group* (parents before children), membership*.
 * The same roster always gives the same XML: nothing depends on the
 * wall clock, the locale or the environment.
 *
 * Two layers: "render" appends records to a large byte buffer (struct
 * out) with hand-written escaping; "sink" takes full buffers and puts
 * them into the file, plain or gzip.  Only out_flush() and, for the
 * persons and members of a gzip file, gz_submit_fill() cross from one
 * to the other.  gzip is one member of chunks of about 1 MiB compressed
 * in parallel (the fastest level) by ims_options.threads threads while
 * this thread renders the next ones, then written in order; persons and
 * members (nearly all of a file) are rendered by the thread that
 * compresses their chunk.  The cuts, the text and the bytes do not
 * depend on the thread count (see CHUNK below).
 *
 * Decisions (see also the report of the change that added this file):
 *
 * - Inactive persons.  IMS 1.1 has no person status, and an <extension>
 *   child would need a DTD declaration.  An inactive person is written
 *   with <systemrole systemroletype="None"/>: the DTD's own value for
 *   "no role in the target system", valid against the unmodified DTD,
 *   and ignored by Moodle (which reads no systemrole).  An active person
 *   has no <systemrole>.  ims_read() maps None back to active = 0, so
 *   reading a snapshot restores `active` exactly.  Inactive persons stay
 *   in a full file: leaving them out would make the receiver (and our
 *   own diff against the snapshot) see a delete instead.
 *
 * - description/short longer than 60 characters is written as it is.
 *   Truncating here would make the snapshot differ from the export, so
 *   the diff would report the group as updated every night; the length
 *   limit is a DTD comment, not a rule xmllint checks, and Moodle maps
 *   short to the (254 character) course fullname.  Warning about it is
 *   the readers' and `sisfeed validate`'s job.
 *
 * - Invalid UTF-8 never reaches the file: the readers reject it, and if
 *   a string still holds some, the write fails (-1, the error names the
 *   record and field).  Replacing or skipping would be guessing, and a
 *   skipped record in a full file is a delete at the receiver.
 *
 * - C0 control characters other than TAB, LF and CR, and U+FFFE and
 *   U+FFFF, are not XML characters: they are dropped.  No CDATA and no
 *   numeric character references (Moodle would store them literally).
 *
 * - An institutionrole is written only when the person's role is one of
 *   the DTD's institutionroletype values (exact case); others are left
 *   out so that the file stays valid.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sisfeed.h"

/*
 * gzip output is one gzip member made of independently compressed
 * chunks (as pigz does): the XML byte stream is cut after the header,
 * after every PRUN_PERSONS persons, every CHUNK bytes of the groups,
 * after the last group and after every MRUN_MEMBERS members (put_runs:
 * a chunk of persons or members is rendered by the thread that
 * compresses it, so that every core renders).  Each chunk is raw
 * deflate (fastest level) ending on a byte boundary
 * (Z_SYNC_FLUSH; the last one Z_FINISH), and the outputs are written in
 * order between one gzip header and one trailer (CRC-32 of the chunks'
 * CRCs combined, ISIZE).  The cuts depend only on the roster, so
 * every chunk holds the same text whatever the number of threads and
 * however they are scheduled, and each is compressed on its own
 * (lib/zchunk.c, whose engines give the same bytes for the same chunk
 * in any process); so the file is the same bytes too.
 */
#define CHUNK		(1024 * 1024)	/* XML bytes per deflate chunk */
#define OUT_FLUSH	CHUNK		/* render this much, then sink it */
#define OUT_SLACK	(64 * 1024)	/* room past OUT_FLUSH for a record */
#define GZ_MAX_THREADS	64
#define GZ_AUTO_THREADS	8		/* threads 0: online CPUs, at most */
#define SDID_LEVELS	5		/* indent levels of a <sourcedid> */

enum slot_state { SL_FREE, SL_QUEUED, SL_BUSY, SL_DONE, SL_FAILED };

/*
 * Renders the XML of a chunk into *buf (growing it; *len bytes, *cap),
 * from items lo..hi of what arg describes; called by whichever thread
 * compresses the chunk.  0, or -1 with the error set (thread-local: the
 * writer takes the message from the slot).
 */
typedef int (*chunk_fill)(const void *arg, size_t lo, size_t hi,
    char **buf, size_t *len, size_t *cap);

/* One chunk: its XML in, its raw deflate out. */
struct slot {
	char		*in;		/* XML (kept for reuse once written) */
	size_t		 incap, inlen;
	unsigned char	*out;
	size_t		 outcap, outlen;
	uLong		 crc;		/* crc32 of in[0..inlen) */
	int		 last;		/* ends the deflate stream */
	int		 err;		/* SL_FAILED: errno, 0: the engine */
	enum slot_state	 state;
	chunk_fill	 fill;		/* non-NULL: render in first */
	const void	*fillarg;
	size_t		 lo, hi;
	char		 msg[512];	/* SL_FAILED by fill: its error */
};

struct gz;

/* A compressing thread and its own compressor. */
struct worker {
	struct gz	*gz;
	pthread_t	 tid;
	struct zchunk	*z;
	int		 running;
};

/*
 * The gzip side of a sink: a ring of slots.  Chunk number seq lives in
 * slots[seq % nslots]; chunks written <= seq < submitted are in flight
 * (queued, being compressed, or compressed and waiting to be written),
 * chunk `submitted` is the one being rendered.  Only the writing thread
 * changes submitted and written; workers take chunks in order (taken).
 * State, submitted, taken and stop are guarded by mu; a slot's buffers
 * belong to the worker between SL_BUSY and SL_DONE, else to the writer.
 */
struct gz {
	pthread_mutex_t	 mu;
	pthread_cond_t	 work;		/* a chunk was queued, or stop */
	pthread_cond_t	 done;		/* a chunk was compressed */
	int		 sync;		/* mu, work and done initialised */
	struct slot	*slots;
	size_t		 nslots;
	uint64_t	 submitted, taken, written;
	int		 stop;
	int		 want;		/* compressing threads; 1: inline */
	struct worker	*w;		/* want of them, once started */
	int		 nw;		/* workers running; 0: inline */
	int		 started;
	struct zchunk	*z;		/* the inline compressor */
	uLong		 crc;		/* of the chunks written */
	uint32_t	 isize;		/* their length mod 2^32 */
};

/* Where rendered bytes go: a file, plain or gzip. */
struct sink {
	const char	*path;
	int		 fd;
	struct gz	*gz;		/* NULL: plain */
};

/* The render buffer and the record being written (for messages). */
struct out {
	char		*buf;
	size_t		 len, cap;
	struct sink	 sink;
	int		 failed;
	int		 grow;		/* grow buf, never sink it (a fill) */
	const char	*kind;		/* "person", "group", "membership" */
	const char	*key;
	/* "<sourcedid>\n  <source>S</source>\n  <id>" per indent level,
	 * and "</id>\n</sourcedid>\n" */
	char		*sd_pre[SDID_LEVELS];
	size_t		 sd_prelen[SDID_LEVELS];
	char		*sd_post[SDID_LEVELS];
	size_t		 sd_postlen[SDID_LEVELS];
};

static const char spaces[] = "                                ";

static const char *const instroles[] = {
	"Student", "Faculty", "Staff", "Alumni", "ProspectiveStudent",
	"Guest", "Other", "Administrator", "Observer", NULL
};

/* ------------------------------------------------------------------ */
/* The sink.                                                           */

static int
write_all(const char *path, int fd, const void *p, size_t n)
{
	if (fd_write(fd, p, n) == -1)
		return error_sys("%s: write", path);
	return 0;
}

/* A mutex or condition call that cannot fail unless memory is corrupt. */
static void
must(int rc)
{
	if (rc != 0)
		abort();
}

/* The number of compressing threads for ims_options.threads. */
static int
gz_threads(int want)
{
	long n;

	if (want > 0)
		return want > GZ_MAX_THREADS ? GZ_MAX_THREADS : want;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > GZ_AUTO_THREADS ? GZ_AUTO_THREADS : (int)n;
}

/*
 * Compress the chunk of slot s with z (lib/zchunk.c): raw deflate that
 * ends on a byte boundary, or with the final block if s->last, and the
 * chunk's CRC-32; rendered first when it has a fill.  Touches only z,
 * s and what the fill reads, so any thread may run it.  Returns 0, or
 * -1 with s->msg (the fill's error) or s->err (an errno, or 0 for the
 * engine) set.
 */
static int
gz_compress(struct zchunk *z, struct slot *s)
{
	s->err = 0;
	s->msg[0] = '\0';
	if (s->fill != NULL) {
		s->inlen = 0;
		if (s->fill(s->fillarg, s->lo, s->hi, &s->in, &s->inlen,
		    &s->incap) == -1) {
			snprintf(s->msg, sizeof(s->msg), "%s", error_last());
			return -1;
		}
	}
	s->crc = crc_update(0, s->in, s->inlen);
	if (zchunk_compress(z, s->in, s->inlen, s->last, &s->out,
	    &s->outcap, &s->outlen) == -1) {
		s->err = errno == EPROTO ? 0 : errno;
		return -1;
	}
	return 0;
}

/* A compressing thread: takes queued chunks in order until stopped. */
static void *
gz_worker(void *arg)
{
	struct worker *w = arg;
	struct gz *g = w->gz;
	struct slot *s;
	int rc;

	must(pthread_mutex_lock(&g->mu));
	for (;;) {
		while (!g->stop && g->taken == g->submitted)
			must(pthread_cond_wait(&g->work, &g->mu));
		if (g->stop)
			break;
		s = &g->slots[g->taken++ % g->nslots];
		s->state = SL_BUSY;
		must(pthread_mutex_unlock(&g->mu));
		rc = gz_compress(w->z, s);
		must(pthread_mutex_lock(&g->mu));
		s->state = rc == 0 ? SL_DONE : SL_FAILED;
		must(pthread_cond_signal(&g->done));
	}
	must(pthread_mutex_unlock(&g->mu));
	return NULL;
}

/*
 * Start the compressing threads (with every signal blocked: signals
 * stay with the main thread).  Threads that cannot be started are done
 * without: fewer workers, or none (inline), give the same bytes.
 */
static void
gz_start(struct sink *s)
{
	struct gz *g = s->gz;
	int i;

	g->started = 1;
	if (g->want < 2)
		return;
	if ((g->w = calloc((size_t)g->want, sizeof(*g->w))) == NULL) {
		log_warn("%s: gzip: no memory for threads, compressing "
		    "inline", s->path);
		return;
	}
	for (i = 0; i < g->want; i++) {
		g->w[i].gz = g;
		if ((g->w[i].z = zchunk_new()) == NULL)
			break;
		if (thread_start(&g->w[i].tid, gz_worker, &g->w[i]) != 0)
			break;
		g->w[i].running = 1;
		g->nw++;
	}
	if (g->nw < g->want)
		log_warn("%s: gzip: started %d of %d compressing threads",
		    s->path, g->nw, g->want);
	log_debug("%s: gzip by %s on %d threads", s->path, zchunk_engine(),
	    g->nw > 0 ? g->nw : 1);
}

/* Stop and join the workers, free everything.  NULL is fine. */
static void
gz_free(struct gz *g)
{
	size_t i;
	int k;

	if (g == NULL)
		return;
	if (g->sync) {
		must(pthread_mutex_lock(&g->mu));
		g->stop = 1;
		must(pthread_cond_broadcast(&g->work));
		must(pthread_mutex_unlock(&g->mu));
	}
	for (k = 0; g->w != NULL && k < g->want; k++) {
		if (g->w[k].running)
			must(pthread_join(g->w[k].tid, NULL));
		zchunk_free(g->w[k].z);
	}
	free(g->w);
	zchunk_free(g->z);
	for (i = 0; g->slots != NULL && i < g->nslots; i++) {
		free(g->slots[i].in);
		free(g->slots[i].out);
	}
	free(g->slots);
	if (g->sync) {
		pthread_cond_destroy(&g->done);
		pthread_cond_destroy(&g->work);
		pthread_mutex_destroy(&g->mu);
	}
	free(g);
}

/* The gzip state for `threads` (ims_options.threads).  NULL on error. */
static struct gz *
gz_new(const char *path, int threads)
{
	struct gz *g;

	if ((g = calloc(1, sizeof(*g))) == NULL) {
		error_sys("%s: gzip", path);
		return NULL;
	}
	g->want = gz_threads(threads);
	/* Two per thread keep every worker busy while the writer waits
	 * for the oldest; inline needs the one rendered and the next. */
	g->nslots = g->want > 1 ? (size_t)g->want * 2 + 2 : 2;
	if ((g->slots = calloc(g->nslots, sizeof(*g->slots))) == NULL) {
		error_sys("%s: gzip", path);
		goto fail;
	}
	if ((g->z = zchunk_new()) == NULL) {
		error_sys("%s: gzip", path);
		goto fail;
	}
	if (pthread_mutex_init(&g->mu, NULL) != 0) {
		error_set("%s: gzip: pthread_mutex_init failed", path);
		goto fail;
	}
	if (pthread_cond_init(&g->work, NULL) != 0) {
		pthread_mutex_destroy(&g->mu);
		error_set("%s: gzip: pthread_cond_init failed", path);
		goto fail;
	}
	if (pthread_cond_init(&g->done, NULL) != 0) {
		pthread_cond_destroy(&g->work);
		pthread_mutex_destroy(&g->mu);
		error_set("%s: gzip: pthread_cond_init failed", path);
		goto fail;
	}
	g->sync = 1;
	return g;
fail:
	gz_free(g);
	return NULL;
}

/*
 * Write the oldest chunk in flight once it is compressed: wait for it
 * if block, else only if it is already done.  Returns 1 if written, 0
 * if not (nothing in flight, or not done), -1 on error.
 */
static int
gz_write_one(struct sink *s, int block)
{
	struct gz *g = s->gz;
	struct slot *c;
	enum slot_state st;

	if (g->written == g->submitted)
		return 0;
	c = &g->slots[g->written % g->nslots];
	if (g->nw > 0) {
		must(pthread_mutex_lock(&g->mu));
		while (block && c->state != SL_DONE && c->state != SL_FAILED)
			must(pthread_cond_wait(&g->done, &g->mu));
		st = c->state;
		must(pthread_mutex_unlock(&g->mu));
	} else
		st = c->state;
	if (st == SL_FAILED) {
		if (c->msg[0] != '\0')
			return error_set("%s", c->msg);
		if (c->err != 0) {
			errno = c->err;
			return error_sys("%s: gzip", s->path);
		}
		return error_set("%s: gzip: deflate failed", s->path);
	}
	if (st != SL_DONE)
		return 0;
	if (write_all(s->path, s->fd, c->out, c->outlen) == -1)
		return -1;
	g->crc = crc32_combine(g->crc, c->crc, (z_off_t)c->inlen);
	g->isize += (uint32_t)c->inlen;
	c->state = SL_FREE;
	g->written++;
	return 1;
}

/* Write the chunks in flight, in order: all of them (waiting) if
 * block, else those done so far.  0 or -1. */
static int
gz_write_done(struct sink *s, int block)
{
	int rc;

	while ((rc = gz_write_one(s, block)) == 1)
		;
	return rc;
}

/* Queue slot cur's chunk (made ready by the caller) to the workers, or
 * compress it here when there are none; then write what is done.  0 or
 * -1. */
static int
gz_queue(struct sink *s, struct slot *cur)
{
	struct gz *g = s->gz;

	if (g->nw == 0) {
		cur->state = gz_compress(g->z, cur) == 0 ? SL_DONE :
		    SL_FAILED;
		g->submitted++;
	} else {
		must(pthread_mutex_lock(&g->mu));
		cur->state = SL_QUEUED;
		g->submitted++;
		must(pthread_cond_signal(&g->work));
		must(pthread_mutex_unlock(&g->mu));
	}
	return gz_write_done(s, 0);
}

/*
 * Make the first n bytes of the render buffer *buf chunk number
 * `submitted` (last: the end of the stream) and queue it, or compress
 * it inline.  The render side gets the next slot's buffer with the
 * bytes after n in it (last: no buffer).  0 or -1.
 */
static int
gz_submit(struct sink *s, char **buf, size_t *len, size_t *cap, size_t n,
    int last)
{
	struct gz *g = s->gz;
	struct slot *cur, *next = NULL;
	size_t rest = *len - n, need;
	char *nb;

	if (!g->started && !last)
		gz_start(s);
	cur = &g->slots[g->submitted % g->nslots];
	if (cur->out == NULL) {
		cur->outcap = zchunk_bound(CHUNK);
		if ((cur->out = malloc(cur->outcap)) == NULL)
			return error_sys("%s: gzip buffer", s->path);
	}
	if (!last) {
		/* The next slot's last chunk must have been written. */
		while (g->submitted + 1 - g->written >= g->nslots)
			if (gz_write_one(s, 1) == -1)
				return -1;
		next = &g->slots[(g->submitted + 1) % g->nslots];
		need = rest > OUT_FLUSH ? rest : OUT_FLUSH;
		need += OUT_SLACK;
		if (next->incap < need) {
			if ((nb = realloc(next->in, need)) == NULL)
				return error_sys("%s: output buffer", s->path);
			next->in = nb;
			next->incap = need;
		}
		memcpy(next->in, *buf + n, rest);
	}
	free(cur->in);		/* NULL: the render side had it */
	cur->in = *buf;
	cur->incap = *cap;
	cur->inlen = n;
	cur->last = last;
	cur->fill = NULL;
	if (last) {
		*buf = NULL;
		*cap = *len = 0;
	} else {
		*buf = next->in;
		*cap = next->incap;
		*len = rest;
		next->in = NULL;
		next->incap = 0;
	}
	return gz_queue(s, cur);
}

/*
 * Make chunk number `submitted` the one fill renders from items lo..hi
 * of arg, on the thread that compresses it, and queue it (never the
 * last).  The render buffer (with nothing in it) stays the render
 * side's, for the chunk after.  0 or -1.
 */
static int
gz_submit_fill(struct sink *s, chunk_fill fill, const void *arg,
    size_t lo, size_t hi)
{
	struct gz *g = s->gz;
	struct slot *cur;

	if (!g->started)
		gz_start(s);
	/* The render side's buffer moves to the next slot: that slot's
	 * last chunk must have been written (as in gz_submit). */
	while (g->submitted + 1 - g->written >= g->nslots)
		if (gz_write_one(s, 1) == -1)
			return -1;
	cur = &g->slots[g->submitted % g->nslots];
	if (cur->out == NULL) {
		cur->outcap = zchunk_bound(CHUNK);
		if ((cur->out = malloc(cur->outcap)) == NULL)
			return error_sys("%s: gzip buffer", s->path);
	}
	cur->inlen = 0;
	cur->last = 0;
	cur->fill = fill;
	cur->fillarg = arg;
	cur->lo = lo;
	cur->hi = hi;
	return gz_queue(s, cur);
}

/*
 * Wait until no thread is at work on a chunk in flight (each is done or
 * failed), so that what their fills read may go.  g may be NULL.
 */
static void
gz_settle(struct gz *g)
{
	struct slot *c;
	uint64_t k;

	if (g == NULL || g->nw == 0)
		return;
	must(pthread_mutex_lock(&g->mu));
	for (k = g->written; k < g->submitted; k++) {
		c = &g->slots[k % g->nslots];
		while (c->state == SL_QUEUED || c->state == SL_BUSY)
			must(pthread_cond_wait(&g->done, &g->mu));
	}
	must(pthread_mutex_unlock(&g->mu));
}

/* Queue every whole chunk of the render buffer; if final, the rest as
 * the last chunk too.  0 or -1. */
static int
gz_push(struct sink *s, char **buf, size_t *len, size_t *cap, int final)
{
	while (*len > CHUNK)
		if (gz_submit(s, buf, len, cap, CHUNK, 0) == -1)
			return -1;
	if (final)
		return gz_submit(s, buf, len, cap, *len, 1);
	return 0;
}

/* Create path 0600 (gzip: with its compressing state and the gzip
 * header written).  0, or -1 with nothing left behind. */
static int
sink_open(struct sink *s, const char *path, int gzip, int threads)
{
	/* mtime 0, no flags, XFL 4 (fastest), OS 3 (Unix). */
	static const unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0,
		4, 3 };

	memset(s, 0, sizeof(*s));
	s->path = path;
	s->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (s->fd == -1)
		return error_sys("%s: open", path);
	if (fchmod(s->fd, 0600) == -1) {
		error_sys("%s: chmod", path);
		goto fail;
	}
	if (!gzip)
		return 0;
	if ((s->gz = gz_new(path, threads)) == NULL)
		goto fail;
	if (write_all(path, s->fd, hdr, sizeof(hdr)) == -1)
		goto fail;
	return 0;
fail:
	gz_free(s->gz);
	s->gz = NULL;
	close(s->fd);
	s->fd = -1;
	unlink(path);
	return -1;
}

/*
 * Put the render buffer (*buf, *len bytes, *cap) into the file: plain,
 * all of it; gzip, its whole chunks (final: all of it, and *buf is
 * taken).  *buf, *len and *cap are updated.  0 or -1.
 */
static int
sink_flush(struct sink *s, char **buf, size_t *len, size_t *cap, int final)
{
	if (s->gz != NULL)
		return gz_push(s, buf, len, cap, final);
	if (*len > 0 && write_all(s->path, s->fd, *buf, *len) == -1)
		return -1;
	*len = 0;
	return 0;
}

/* Give up: stop the threads, close and remove the partial file. */
static void
sink_abort(struct sink *s)
{
	gz_free(s->gz);
	s->gz = NULL;
	if (s->fd != -1) {
		close(s->fd);
		s->fd = -1;
		unlink(s->path);
	}
}

/*
 * After the final sink_flush: write the chunks still in flight and the
 * gzip trailer, fsync and close.  0, or -1 (file removed).
 */
static int
sink_close(struct sink *s)
{
	struct gz *g = s->gz;
	unsigned char t[8];
	int i;

	if (g != NULL) {
		if (gz_write_done(s, 1) == -1)
			goto fail;
		for (i = 0; i < 4; i++) {
			t[i] = (unsigned char)(g->crc >> (8 * i));
			t[4 + i] = (unsigned char)(g->isize >> (8 * i));
		}
		if (write_all(s->path, s->fd, t, sizeof(t)) == -1)
			goto fail;
		gz_free(g);
		s->gz = NULL;
	}
	if (fsync(s->fd) == -1) {
		error_sys("%s: fsync", s->path);
		goto fail;
	}
	if (close(s->fd) == -1) {
		s->fd = -1;
		error_sys("%s: close", s->path);
		unlink(s->path);
		return -1;
	}
	s->fd = -1;
	return 0;
fail:
	sink_abort(s);
	return -1;
}

/* ------------------------------------------------------------------ */
/* The render buffer.                                                  */

static int
out_flush(struct out *o)
{
	if (o->failed)
		return -1;
	if (sink_flush(&o->sink, &o->buf, &o->len, &o->cap, 0) == -1) {
		o->failed = 1;
		return -1;
	}
	return 0;
}

/* Make room for n more bytes.  0, or -1 (o->failed set). */
static int
out_reserve(struct out *o, size_t n)
{
	size_t ncap;
	char *nb;

	if (o->failed)
		return -1;
	if (o->cap - o->len >= n)
		return 0;
	ncap = o->len + n;
	if (o->grow) {
		/* a chunk's fill: doubled, from a buffer's worth */
		if (ncap < OUT_FLUSH + OUT_SLACK)
			ncap = OUT_FLUSH + OUT_SLACK;
		if (ncap < 2 * o->cap)
			ncap = 2 * o->cap;
	} else {
		if (out_flush(o) == -1)
			return -1;
		if (o->cap - o->len >= n)
			return 0;
		ncap = o->len + n;
	}
	if ((nb = realloc(o->buf, ncap)) == NULL) {
		o->failed = 1;
		return error_sys("%s: output buffer", o->sink.path);
	}
	o->buf = nb;
	o->cap = ncap;
	return 0;
}

/* Sink the buffer once a record end finds it full enough. */
static void
out_record_done(struct out *o)
{
	if (!o->failed && !o->grow && o->len >= OUT_FLUSH)
		out_flush(o);
}

static void
put_raw(struct out *o, const char *s, size_t n)
{
	if (out_reserve(o, n) == -1)
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

#define PUT(o, lit)	put_raw((o), (lit), sizeof(lit) - 1)

static void
put_str(struct out *o, const char *s)
{
	put_raw(o, s, strlen(s));
}

static void
put_indent(struct out *o, int level)
{
	put_raw(o, spaces, (size_t)level * 2);
}

/*
 * Length of the UTF-8 sequence at p (n bytes left) if it is valid (no
 * overlongs, surrogates or code points past U+10FFFF), else 0.  The
 * code point goes into *cp.
 */
static size_t
utf8_seq(const unsigned char *p, size_t n, uint32_t *cp)
{
	unsigned char c = p[0];

	if (c < 0xC2 || c > 0xF4)
		return 0;
	if (c < 0xE0) {
		if (n < 2 || (p[1] & 0xC0) != 0x80)
			return 0;
		*cp = ((uint32_t)(c & 0x1F) << 6) | (p[1] & 0x3F);
		return 2;
	}
	if (c < 0xF0) {
		if (n < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
			return 0;
		*cp = ((uint32_t)(c & 0x0F) << 12) |
		    ((uint32_t)(p[1] & 0x3F) << 6) | (p[2] & 0x3F);
		if (*cp < 0x800 || (*cp >= 0xD800 && *cp <= 0xDFFF))
			return 0;
		return 3;
	}
	if (n < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
	    (p[3] & 0xC0) != 0x80)
		return 0;
	*cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(p[1] & 0x3F) << 12) |
	    ((uint32_t)(p[2] & 0x3F) << 6) | (p[3] & 0x3F);
	if (*cp < 0x10000 || *cp > 0x10FFFF)
		return 0;
	return 4;
}

/* Fail the record: its field holds invalid UTF-8. */
static void
bad_utf8(struct out *o, const char *field)
{
	o->failed = 1;
	if (utf8_valid(o->key, strlen(o->key)))
		error_set("%s: %s '%s': %s: invalid UTF-8", o->sink.path,
		    o->kind, o->key, field);
	else
		error_set("%s: %s (key not UTF-8): %s: invalid UTF-8",
		    o->sink.path, o->kind, field);
}

/*
 * Append s escaped for element text (attr 0: & < >) or for a
 * double-quoted attribute (attr 1: also ").  Drops characters XML 1.0
 * does not allow; fails on invalid UTF-8, naming the field.  One pass
 * over s: runs of plain ASCII are copied whole, and the NUL ends it.
 */
static void
put_escaped(struct out *o, const char *field, const char *s, int attr)
{
	const unsigned char *p = (const unsigned char *)s, *q;
	size_t k;
	uint32_t cp;

	for (;;) {
		for (q = p; *q >= 0x20 && *q < 0x80 && *q != '&' &&
		    *q != '<' && *q != '>' && (!attr || *q != '"'); q++)
			;
		if (q > p)
			put_raw(o, (const char *)p, (size_t)(q - p));
		p = q;
		switch (*p) {
		case '\0':
			return;
		case '&':
			PUT(o, "&amp;");
			p++;
			continue;
		case '<':
			PUT(o, "&lt;");
			p++;
			continue;
		case '>':
			PUT(o, "&gt;");
			p++;
			continue;
		case '"':
			PUT(o, "&quot;");
			p++;
			continue;
		case '\t':
		case '\n':
		case '\r':
			put_raw(o, (const char *)p++, 1);
			continue;
		default:
			break;
		}
		if (*p < 0x20) {	/* other C0 controls: not XML */
			p++;
			continue;
		}
		/* 4 is enough: a NUL fails the continuation-byte test
		 * before anything past it is read. */
		if ((k = utf8_seq(p, 4, &cp)) == 0) {
			bad_utf8(o, field);
			return;
		}
		if (cp != 0xFFFE && cp != 0xFFFF)
			put_raw(o, (const char *)p, k);
		p += k;
	}
}

/* Append <name>text</name> and a newline at an indent level. */
static void
put_elem(struct out *o, int level, const char *name, const char *text)
{
	size_t n = strlen(name);

	put_indent(o, level);
	put_raw(o, "<", 1);
	put_raw(o, name, n);
	put_raw(o, ">", 1);
	put_escaped(o, name, text, 0);
	put_raw(o, "</", 2);
	put_raw(o, name, n);
	put_raw(o, ">\n", 2);
}

/* The <sourcedid> of key at an indent level (1..SDID_LEVELS-1). */
static void
put_sourcedid(struct out *o, int level, const char *key)
{
	put_raw(o, o->sd_pre[level], o->sd_prelen[level]);
	put_escaped(o, "id", key, 0);
	put_raw(o, o->sd_post[level], o->sd_postlen[level]);
}

static void
put_recstatus(struct out *o, int rec)
{
	static const char *const v[] = { "", " recstatus=\"1\"",
		" recstatus=\"2\"", " recstatus=\"3\"" };

	if (rec > REC_NONE && rec <= REC_DELETE)
		put_str(o, v[rec]);
}

/* ------------------------------------------------------------------ */
/* Setup and teardown.                                                 */

static char *
xstrdup_len(const char *s, size_t *len)
{
	char *d;

	*len = strlen(s);
	if ((d = strdup(s)) == NULL)
		error_sys("strdup");
	return d;
}

/*
 * Pre-render the <sourcedid> frames: every one carries the same
 * <source>, and memberships write millions of them.
 */
static int
out_sourcedid_frames(struct out *o, const char *source)
{
	struct out tmp;
	char pre[512], post[128];
	int level;

	memset(&tmp, 0, sizeof(tmp));
	tmp.sink.path = o->sink.path;
	tmp.sink.fd = -1;
	/* room for the worst case ("&quot;" a byte): never flushed */
	tmp.cap = strlen(source) * 6 + 64;
	if ((tmp.buf = malloc(tmp.cap)) == NULL)
		return error_sys("malloc");
	tmp.kind = "properties";
	tmp.key = "source";
	put_escaped(&tmp, "source", source, 0);
	if (tmp.failed) {
		free(tmp.buf);
		return -1;
	}
	for (level = 1; level < SDID_LEVELS; level++) {
		snprintf(pre, sizeof(pre), "%.*s<sourcedid>\n%.*s<source>",
		    level * 2, spaces, level * 2 + 2, spaces);
		snprintf(post, sizeof(post), "</id>\n%.*s</sourcedid>\n",
		    level * 2, spaces);
		o->sd_prelen[level] = strlen(pre) + tmp.len +
		    sizeof("</source>\n") - 1 + (size_t)level * 2 + 2 +
		    sizeof("<id>") - 1;
		if ((o->sd_pre[level] = malloc(o->sd_prelen[level] + 1)) ==
		    NULL) {
			free(tmp.buf);
			return error_sys("malloc");
		}
		snprintf(o->sd_pre[level], o->sd_prelen[level] + 1,
		    "%s%.*s</source>\n%.*s<id>", pre, (int)tmp.len, tmp.buf,
		    level * 2 + 2, spaces);
		if ((o->sd_post[level] = xstrdup_len(post,
		    &o->sd_postlen[level])) == NULL) {
			free(tmp.buf);
			return -1;
		}
	}
	free(tmp.buf);
	return 0;
}

static void
out_free(struct out *o)
{
	int i;

	for (i = 0; i < SDID_LEVELS; i++) {
		free(o->sd_pre[i]);
		free(o->sd_post[i]);
	}
	free(o->buf);
	memset(o, 0, sizeof(*o));
}

static int
out_open(struct out *o, const char *path, const struct ims_options *opt)
{
	memset(o, 0, sizeof(*o));
	o->sink.path = path;
	o->sink.fd = -1;
	o->kind = "properties";
	o->key = "";
	if (out_sourcedid_frames(o, opt->source ? opt->source : "") == -1) {
		out_free(o);
		return -1;
	}
	o->cap = OUT_FLUSH + OUT_SLACK;
	if ((o->buf = malloc(o->cap)) == NULL) {
		out_free(o);
		return error_sys("%s: output buffer", path);
	}
	if (sink_open(&o->sink, path, opt->gzip, opt->threads) == -1) {
		out_free(o);
		return -1;
	}
	return 0;
}

/* Sink the rest and close; on any earlier failure remove the file. */
static int
out_close(struct out *o)
{
	int rc = 0;

	if (o->failed || sink_flush(&o->sink, &o->buf, &o->len, &o->cap,
	    1) == -1) {
		sink_abort(&o->sink);
		rc = -1;
	} else if (sink_close(&o->sink) == -1)
		rc = -1;
	out_free(o);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Records.                                                            */

static void
put_header(struct out *o, const struct roster *r,
    const struct ims_options *opt, const char *type)
{
	struct tm tm;
	time_t t = r->datetime;
	char when[64];

	if (gmtime_r(&t, &tm) == NULL) {
		o->failed = 1;
		error_set("%s: datetime %lld out of range", o->sink.path,
		    (long long)t);
		return;
	}
	if (strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		o->failed = 1;
		error_set("%s: datetime %lld out of range", o->sink.path,
		    (long long)t);
		return;
	}
	if (opt->profile == PROFILE_ITSLEARNING)
		PUT(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<enterprise xmlns=\"" PIFU_NS "\">\n"
		    "  <properties lang=\"" PIFU_LANG "\">\n");
	else
		PUT(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		    "<enterprise>\n  <properties>\n");
	put_elem(o, 2, "datasource", opt->datasource ? opt->datasource : "");
	if (opt->target != NULL)
		put_elem(o, 2, "target", opt->target);
	put_elem(o, 2, "type", type);
	put_elem(o, 2, "datetime", when);
	PUT(o, "  </properties>\n");
}

static int
instrole_ok(const char *role)
{
	int i;

	for (i = 0; instroles[i] != NULL; i++)
		if (strcmp(role, instroles[i]) == 0)
			return 1;
	return 0;
}

/* <name> with <fn> and <n>. */
static void
put_name(struct out *o, const struct person *p)
{
	PUT(o, "    <name>\n      <fn>");
	put_escaped(o, "given", p->given, 0);
	if (*p->given != '\0' && *p->family != '\0')
		PUT(o, " ");
	put_escaped(o, "family", p->family, 0);
	PUT(o, "</fn>\n      <n>\n");
	put_elem(o, 4, "family", p->family);
	put_elem(o, 4, "given", p->given);
	PUT(o, "      </n>\n    </name>\n");
}

static void
put_person(struct out *o, const struct person *p, int rec)
{
	o->kind = "person";
	o->key = p->id;
	PUT(o, "  <person");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, p->id);
	if (*p->userid != '\0')
		put_elem(o, 2, "userid", p->userid);
	put_name(o, p);
	if (*p->email != '\0')
		put_elem(o, 2, "email", p->email);
	if (!p->active)
		PUT(o, "    <systemrole systemroletype=\"None\"/>\n");
	if (*p->role != '\0' && instrole_ok(p->role)) {
		PUT(o, "    <institutionrole primaryrole=\"Yes\" "
		    "institutionroletype=\"");
		put_escaped(o, "role", p->role, 1);
		PUT(o, "\"/>\n");
	}
	PUT(o, "  </person>\n");
	out_record_done(o);
}

/* <org> and <timeframe> of a group, each only when it has a value. */
static void
put_group_org_timeframe(struct out *o, const struct group *g)
{
	if (*g->orgname != '\0' || *g->orgunit != '\0') {
		PUT(o, "    <org>\n");
		if (*g->orgname != '\0')
			put_elem(o, 3, "orgname", g->orgname);
		if (*g->orgunit != '\0')
			put_elem(o, 3, "orgunit", g->orgunit);
		PUT(o, "    </org>\n");
	}
	if (*g->term == '\0' && *g->begin == '\0' && *g->end == '\0')
		return;
	PUT(o, "    <timeframe>\n");
	if (*g->begin != '\0') {
		PUT(o, "      <begin restrict=\"0\">");
		put_escaped(o, "begin", g->begin, 0);
		PUT(o, "</begin>\n");
	}
	if (*g->end != '\0') {
		PUT(o, "      <end restrict=\"0\">");
		put_escaped(o, "end", g->end, 0);
		PUT(o, "</end>\n");
	}
	if (*g->term != '\0')
		put_elem(o, 3, "adminperiod", g->term);
	PUT(o, "    </timeframe>\n");
}

static void
put_group(struct out *o, const struct group *g, uint32_t depth, int rec)
{
	char lv[32];
	const char *parent = *g->parent != '\0' ? g->parent : g->id;

	o->kind = "group";
	o->key = g->id;
	PUT(o, "  <group");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, g->id);
	if (*g->type != '\0') {
		snprintf(lv, sizeof(lv), "%u", (unsigned)depth);
		PUT(o, "    <grouptype>\n      <scheme>sisfeed</scheme>\n"
		    "      <typevalue level=\"");
		put_str(o, lv);
		PUT(o, "\">");
		put_escaped(o, "type", g->type, 0);
		PUT(o, "</typevalue>\n    </grouptype>\n");
	}
	PUT(o, "    <description>\n");
	put_elem(o, 3, "short", g->shortname);
	if (*g->longname != '\0')
		put_elem(o, 3, "long", g->longname);
	PUT(o, "    </description>\n");
	put_group_org_timeframe(o, g);
	/* A root points at itself (itslearning, Cerebrum, PIFU). */
	PUT(o, "    <relationship relation=\"1\">\n");
	put_sourcedid(o, 3, parent);
	PUT(o, "      <label>Parent</label>\n    </relationship>\n"
	    "  </group>\n");
	out_record_done(o);
}

/*
 * The role's timeframe of m, when it has one: begin and end with
 * restrict="1", the one form Moodle reads as the enrolment's start and
 * end (FORMAT.md 9); after <status>, as the DTD orders <role>.
 */
static void
put_role_timeframe(struct out *o, const struct membership *m)
{
	char day[11];

	if (m == NULL || (m->begin == 0 && m->end == 0))
		return;
	PUT(o, "        <timeframe>\n");
	if (m->begin != 0) {
		PUT(o, "          <begin restrict=\"1\">");
		put_raw(o, day_format(m->begin, day), 10);
		PUT(o, "</begin>\n");
	}
	if (m->end != 0) {
		PUT(o, "          <end restrict=\"1\">");
		put_raw(o, day_format(m->end, day), 10);
		PUT(o, "</end>\n");
	}
	PUT(o, "        </timeframe>\n");
}

/* A <member>: person in role, active or not, with recstatus rec and
 * the timeframe of tf (NULL: none). */
static void
put_member(struct out *o, const char *person, int role, int active,
    int rec, const struct membership *tf)
{
	static const char *const code[] = { "00", "01", "02", "03", "04",
		"05", "06", "07", "08" };

	if (role < 1 || role > 8) {
		o->failed = 1;
		error_set("%s: membership '%s': person '%s': roletype %d "
		    "out of range", o->sink.path, o->key, person, role);
		return;
	}
	PUT(o, "    <member>\n");
	put_sourcedid(o, 3, person);
	PUT(o, "      <idtype>1</idtype>\n      <role roletype=\"");
	put_raw(o, code[role], 2);
	PUT(o, "\"");
	put_recstatus(o, rec);
	if (active)
		PUT(o, ">\n        <status>1</status>\n");
	else
		PUT(o, ">\n        <status>0</status>\n");
	put_role_timeframe(o, tf);
	PUT(o, "      </role>\n    </member>\n");
}

static void
put_membership_open(struct out *o, const char *group)
{
	o->kind = "membership";
	o->key = group;
	PUT(o, "  <membership>\n");
	put_sourcedid(o, 2, group);
}

static void
put_membership_close(struct out *o)
{
	PUT(o, "  </membership>\n");
	out_record_done(o);
}

/* ------------------------------------------------------------------ */
/* PIFU-IMS records (profile itslearning; formats/pifu.c has the rest). */

/* <userid useridtype="type">text</userid> in a person. */
static void
put_userid(struct out *o, const char *type, const char *field,
    const char *text)
{
	PUT(o, "    <userid useridtype=\"");
	put_str(o, type);
	PUT(o, "\">");
	put_escaped(o, field, text, 0);
	PUT(o, "</userid>\n");
}

/*
 * <fn>: "given family" cut to PIFU's 256 characters (not read back:
 * the reader takes <n>).
 */
static void
put_fn_pifu(struct out *o, const struct person *p)
{
	char fn[2 * 256 * 4 + 2];
	size_t i, n = 0;

	snprintf(fn, sizeof(fn), "%s%s%s", p->given,
	    *p->given != '\0' && *p->family != '\0' ? " " : "", p->family);
	for (i = 0; fn[i] != '\0'; i++)
		if (((unsigned char)fn[i] & 0xC0) != 0x80 && n++ == 256)
			break;
	fn[i] = '\0';
	put_elem(o, 3, "fn", fn);
}

static void
put_person_pifu(struct out *o, const struct person *p)
{
	o->kind = "person";
	o->key = p->id;
	PUT(o, "  <person>\n");
	put_sourcedid(o, 2, p->id);
	if (*p->userid != '\0')
		put_userid(o, "username", "userid", p->userid);
	if (*p->nin != '\0')
		put_userid(o, "personNIN", "nin", p->nin);
	PUT(o, "    <name>\n");
	put_fn_pifu(o, p);
	PUT(o, "      <n>\n");
	put_elem(o, 4, "family", p->family);
	put_elem(o, 4, "given", p->given);
	PUT(o, "      </n>\n    </name>\n");
	if (*p->email != '\0')
		put_elem(o, 2, "email", p->email);
	if (p->active)
		PUT(o, "    <extension>\n      <pifu_status type=\""
		    "activeInactive\">aktiv</pifu_status>\n"
		    "    </extension>\n  </person>\n");
	else
		PUT(o, "    <extension>\n      <pifu_status type=\""
		    "activeInactive\">inaktiv</pifu_status>\n"
		    "    </extension>\n  </person>\n");
	out_record_done(o);
}

static void
put_group_pifu(struct out *o, const struct group *g)
{
	const char *scheme, *level;

	o->kind = "group";
	o->key = g->id;
	if (pifu_grouptype(g->type, &scheme, &level) == -1) {
		o->failed = 1;
		error_set("%s: group '%s': type '%s' is not a PIFU-IMS "
		    "typevalue", o->sink.path, g->id, g->type);
		return;
	}
	PUT(o, "  <group>\n");
	put_sourcedid(o, 2, g->id);
	PUT(o, "    <grouptype>\n      <scheme>");
	put_str(o, scheme);
	PUT(o, "</scheme>\n      <typevalue level=\"");
	put_str(o, level);
	PUT(o, "\">");
	put_escaped(o, "type", g->type, 0);
	PUT(o, "</typevalue>\n    </grouptype>\n    <description>\n");
	put_elem(o, 3, "short", g->shortname);
	if (*g->longname != '\0')
		put_elem(o, 3, "long", g->longname);
	PUT(o, "    </description>\n");
	put_group_org_timeframe(o, g);	/* pifu_fit cleared the org */
	/* Every group has a parent; a root points at itself. */
	PUT(o, "    <relationship relation=\"1\">\n");
	put_sourcedid(o, 3, *g->parent != '\0' ? g->parent : g->id);
	PUT(o, "      <label>Parent</label>\n    </relationship>\n"
	    "  </group>\n");
	out_record_done(o);
}

/* ------------------------------------------------------------------ */
/* The group hierarchy.                                                */

/* Index of g's parent in r: -1 for a root (no parent, or itself), -2
 * when the parent is not a group of r. */
static long
parent_index(const struct roster *r, size_t g)
{
	long p;

	if (*r->groups[g].parent == '\0')
		return -1;
	if ((p = roster_find_group(r, r->groups[g].parent)) < 0)
		return -2;
	if ((size_t)p == g)
		return -1;
	return p;
}

/*
 * The depth of every group of r (roots 0) into *out (malloc'd, ngroups
 * entries).  Fails naming the group on an unknown parent or a cycle.
 */
static int
group_depths(const char *path, const struct roster *r, uint32_t **out)
{
	uint32_t *d, *stack, base = 0;
	uint8_t *state;
	size_t i, j, sp;
	long p;
	int rc = -1;

	*out = NULL;
	d = calloc(r->ngroups + 1, sizeof(*d));
	stack = calloc(r->ngroups + 1, sizeof(*stack));
	state = calloc(r->ngroups + 1, 1);
	if (d == NULL || stack == NULL || state == NULL) {
		error_sys("%s: group depths", path);
		goto out;
	}
	for (i = 0; i < r->ngroups; i++) {
		sp = 0;
		for (j = i;;) {
			if (state[j] == 2) {
				base = d[j] + 1;
				break;
			}
			if (state[j] == 1) {
				error_set("%s: group '%s': parent cycle",
				    path, r->groups[j].id);
				goto out;
			}
			state[j] = 1;
			stack[sp++] = (uint32_t)j;
			if ((p = parent_index(r, j)) == -1) {
				base = 0;
				break;
			}
			if (p == -2) {
				error_set("%s: group '%s': parent '%s' is not "
				    "a group", path, r->groups[j].id,
				    r->groups[j].parent);
				goto out;
			}
			j = (size_t)p;
		}
		while (sp > 0) {
			j = stack[--sp];
			d[j] = base++;
			state[j] = 2;
		}
	}
	*out = d;
	d = NULL;
	rc = 0;
out:
	free(d);
	free(stack);
	free(state);
	return rc;
}

/*
 * The order to write the groups of r in: by depth, then by key, so that
 * every parent comes before its children.  *order is malloc'd.
 */
static int
group_order(const char *path, const struct roster *r, uint32_t **order,
    uint32_t **depth)
{
	uint32_t *d, *o, maxd = 0;
	size_t *start, i;

	*order = NULL;
	*depth = NULL;
	if (group_depths(path, r, &d) == -1)
		return -1;
	for (i = 0; i < r->ngroups; i++)
		if (d[i] > maxd)
			maxd = d[i];
	o = calloc(r->ngroups + 1, sizeof(*o));
	start = calloc((size_t)maxd + 2, sizeof(*start));
	if (o == NULL || start == NULL) {
		free(o);
		free(start);
		free(d);
		return error_sys("%s: group order", path);
	}
	for (i = 0; i < r->ngroups; i++)
		start[d[i] + 1]++;
	for (i = 1; i <= maxd + 1; i++)
		start[i] += start[i - 1];
	for (i = 0; i < r->ngroups; i++)
		o[start[d[i]]++] = (uint32_t)i;
	free(start);
	*order = o;
	*depth = d;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Full files.                                                         */

/* A person's id as a <member> carries it: escaped once, not once for
 * every membership. */
/*
 * The members of a full file are rendered from a table of the persons'
 * escaped ids, 8 bytes an entry over one blob of the ids, and fixed
 * frames: a member is the opening frame, the id and the closing frame
 * for its role and status.  Members name persons in random order, so
 * the entry and the id a few members ahead are prefetched: without
 * that (GCC 12 had dropped the __builtin_prefetch calls), the render
 * waited on memory for most of its time (issue 13).
 */
#define MPF_ENTRY	16	/* prefetch the id's entry this many ahead */
#define MPF_ID		8	/* and the id itself this many */
#define MPF_PERSON	8	/* a person's strings this many ahead */
#define MRUN_MEMBERS	4096	/* members a gzip chunk: about 1 MiB */
#define PRUN_PERSONS	2048	/* persons a gzip chunk: about 1 MiB */

/* A person's escaped id: in the id table's blob at off, len bytes. */
struct eid {
	uint32_t	off, len;
};

struct idtab {
	struct eid	*v;		/* v[person] */
	char		*blob;		/* the ids, one after the other */
	size_t		 len, cap;
};

/* 1 if s needs no escaping and no checking: printable ASCII but & < >. */
static int
plain_ascii(const char *s, size_t *len)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p >= 0x80 || *p == '&' || *p == '<' ||
		    *p == '>')
			return 0;
	*len = (size_t)(p - (const unsigned char *)s);
	return 1;
}

/* Append n bytes of s to t's blob as entry e.  0, or -1 when memory
 * runs out or the blob passes 4 GiB. */
static int
idtab_add(struct idtab *t, const char *s, size_t n, struct eid *e)
{
	size_t cap;
	char *nb;

	if (t->len + n > t->cap) {
		cap = t->cap ? t->cap : 1024 * 1024;
		while (cap < t->len + n)
			cap *= 2;
		if ((nb = realloc(t->blob, cap)) == NULL)
			return -1;
		t->blob = nb;
		t->cap = cap;
	}
	if (t->len + n > UINT32_MAX) {
		errno = EFBIG;
		return -1;
	}
	memcpy(t->blob + t->len, s, n);
	e->off = (uint32_t)t->len;
	e->len = (uint32_t)n;
	t->len += n;
	return 0;
}

static void
idtab_free(struct idtab *t)
{
	free(t->v);
	free(t->blob);
	memset(t, 0, sizeof(*t));
}

/* The escaped ids of all persons of r into t.  0, or -1 with o->failed
 * set and t freed. */
static int
idtab_make(struct out *o, const struct roster *r, struct idtab *t)
{
	struct out tmp;
	size_t i, len;
	int rc;

	memset(t, 0, sizeof(*t));
	memset(&tmp, 0, sizeof(tmp));
	tmp.sink.path = o->sink.path;
	tmp.sink.fd = -1;
	tmp.kind = "person";
	if ((t->v = calloc(r->npersons ? r->npersons : 1,
	    sizeof(*t->v))) == NULL)
		goto fail;
	for (i = 0; i < r->npersons; i++) {
		const char *id = r->persons[i].id;

		if (plain_ascii(id, &len)) {
			if (idtab_add(t, id, len, &t->v[i]) == -1)
				goto fail;
			continue;
		}
		tmp.key = id;
		tmp.len = 0;
		len = strlen(id) * 6 + 64;	/* never flushed */
		if (tmp.cap < len) {
			free(tmp.buf);
			tmp.cap = 0;
			if ((tmp.buf = malloc(len)) == NULL)
				goto fail;
			tmp.cap = len;
		}
		put_escaped(&tmp, "id", id, 0);
		if (tmp.failed) {
			free(tmp.buf);
			o->failed = 1;
			idtab_free(t);
			return -1;
		}
		if (idtab_add(t, tmp.buf, tmp.len, &t->v[i]) == -1)
			goto fail;
	}
	free(tmp.buf);
	return 0;
fail:
	rc = errno;
	free(tmp.buf);
	idtab_free(t);
	o->failed = 1;
	errno = rc;
	return error_sys("%s: person ids", o->sink.path);
}

/*
 * Every <member> of a full file is the same frame around the person's
 * id: an opening part, and a closing part for each role and status.
 * They are rendered once; a member is then three copies.
 */
struct member_frames {
	char	*open;
	size_t	 openlen;
	char	*close[9][2];		/* [role][active] */
	size_t	 closelen[9][2];
};

static void
frames_free(struct member_frames *f)
{
	int role, a;

	free(f->open);
	for (role = 0; role < 9; role++)
		for (a = 0; a < 2; a++)
			free(f->close[role][a]);
	memset(f, 0, sizeof(*f));
}

static int
frames_make(struct out *o, struct member_frames *f)
{
	char buf[512];
	int role, a, n;

	memset(f, 0, sizeof(*f));
	n = snprintf(buf, sizeof(buf), "    <member>\n%.*s",
	    (int)o->sd_prelen[3], o->sd_pre[3]);
	if (n < 0 || (size_t)n >= sizeof(buf) ||
	    (f->open = strdup(buf)) == NULL)
		goto fail;
	f->openlen = (size_t)n;
	for (role = 1; role <= 8; role++)
		for (a = 0; a < 2; a++) {
			n = snprintf(buf, sizeof(buf), "%.*s      <idtype>1"
			    "</idtype>\n      <role roletype=\"%02d\">\n"
			    "        <status>%d</status>\n      </role>\n"
			    "    </member>\n", (int)o->sd_postlen[3],
			    o->sd_post[3], role, a);
			if (n < 0 || (size_t)n >= sizeof(buf) ||
			    (f->close[role][a] = strdup(buf)) == NULL)
				goto fail;
			f->closelen[role][a] = (size_t)n;
		}
	return 0;
fail:
	frames_free(f);
	o->failed = 1;
	return error_sys("%s: member frames", o->sink.path);
}

/* A member of role 1..8 without a timeframe: the frames around the
 * escaped id (idlen bytes). */
static void
put_member_framed(struct out *o, const struct member_frames *f,
    const char *id, size_t idlen, const struct membership *m)
{
	size_t cl = f->closelen[m->role][m->active != 0];
	char *d;

	if (out_reserve(o, f->openlen + idlen + cl) == -1)
		return;
	d = o->buf + o->len;
	memcpy(d, f->open, f->openlen);
	memcpy(d + f->openlen, id, idlen);
	memcpy(d + f->openlen + idlen, f->close[m->role][m->active != 0], cl);
	o->len += f->openlen + idlen + cl;
}

/*
 * Members name persons in random order (a class's students are spread
 * over the whole roster): start loading the id's entry a few members
 * ahead, and the id it names further ahead, so that rendering does not
 * wait for memory twice per member.
 */
static void
member_prefetch(const struct roster *r, const struct idtab *t, size_t i)
{
	if (i + MPF_ENTRY < r->nmembers)
		mem_prefetch(&t->v[r->members[i + MPF_ENTRY].person]);
	if (i + MPF_ID < r->nmembers)
		mem_prefetch(t->blob + t->v[r->members[i + MPF_ID].person].off);
}

/*
 * Records rendered in runs by the threads that compress them (put_runs):
 * the first member of a persons_job or members_job, whose put renders
 * records lo..hi of the job into o.  All of it is read only while the
 * runs are rendered.
 */
struct run_job {
	struct out	 tmpl;		/* frames, path; no buffer */
	void		(*put)(struct out *o, const void *job, size_t lo,
			    size_t hi);
};

/* Set j up to render with put, in o's frames. */
static void
run_job_init(struct run_job *j, const struct out *o,
    void (*put)(struct out *, const void *, size_t, size_t))
{
	j->tmpl = *o;
	j->tmpl.buf = NULL;
	j->tmpl.len = j->tmpl.cap = 0;
	j->put = put;
}

/* A chunk's fill (chunk_fill): records lo..hi of run job arg rendered
 * into *buf.  0, or -1 with the error set. */
static int
run_fill(const void *arg, size_t lo, size_t hi, char **buf, size_t *len,
    size_t *cap)
{
	const struct run_job *j = arg;
	struct out o = j->tmpl;

	o.buf = *buf;
	o.len = *len;
	o.cap = *cap;
	o.grow = 1;
	j->put(&o, arg, lo, hi);
	*buf = o.buf;
	*len = o.len;
	*cap = o.cap;
	return o.failed ? -1 : 0;
}

/* What the members of a full file are rendered from, on any thread. */
struct members_job {
	struct run_job			 run;	/* first: put_runs's view */
	const struct roster		*r;
	const struct idtab		*ids;
	const struct member_frames	*f;
};

/*
 * Members lo..hi of the roster into o, each group's <membership> opened
 * before its first member and closed after its last, as the whole file
 * has them: so runs rendered apart and put one after the other are the
 * bytes the whole run rendered at once gives.
 */
static void
put_members_run(struct out *o, const void *job, size_t lo, size_t hi)
{
	const struct members_job *j = job;
	const struct roster *r = j->r;
	size_t i;

	for (i = lo; i < hi && !o->failed; i++) {
		const struct membership *m = &r->members[i];
		const struct eid *e = &j->ids->v[m->person];

		if (i == 0 || r->members[i - 1].group != m->group)
			put_membership_open(o, r->groups[m->group].id);
		else if (i == lo) {
			/* a group begun in the run before: for messages */
			o->kind = "membership";
			o->key = r->groups[m->group].id;
		}
		member_prefetch(r, j->ids, i);
		/* a timeframe: not in the frames, written in full
		 * (as is a role out of range, for its error) */
		if (m->begin != 0 || m->end != 0 || m->role < 1 ||
		    m->role > 8)
			put_member(o, r->persons[m->person].id, m->role,
			    m->active, REC_NONE, m);
		else
			put_member_framed(o, j->f, j->ids->blob + e->off,
			    e->len, m);
		if (i + 1 == r->nmembers || r->members[i + 1].group != m->group)
			put_membership_close(o);
	}
}

/*
 * Records 0..n of a job (persons, members) into o: plain, rendered here
 * in one go; gzip, in runs of `per`, each run a chunk rendered by the
 * thread that compresses it, so that both cores render.  What o holds
 * so far is then made a chunk of its own first.  The cuts depend only
 * on the roster, not on the threads: the file is the same bytes
 * whatever their number.  The job must stay until the chunks are done
 * (gz_settle, out_close).
 */
static void
put_runs(struct out *o, const struct run_job *job, size_t n, size_t per)
{
	size_t lo, hi;

	if (o->sink.gz == NULL) {
		job->put(o, job, 0, n);
		return;
	}
	if (out_flush(o) == -1)
		return;
	if (o->len > 0 &&
	    gz_submit(&o->sink, &o->buf, &o->len, &o->cap, o->len, 0) == -1) {
		o->failed = 1;
		return;
	}
	for (lo = 0; lo < n && !o->failed; lo = hi) {
		hi = n - lo > per ? lo + per : n;
		if (gz_submit_fill(&o->sink, run_fill, job, lo, hi) == -1)
			o->failed = 1;
	}
}

static void
put_members_full(struct out *o, const struct roster *r)
{
	struct member_frames f;
	struct members_job j;
	struct idtab ids;

	if (r->nmembers == 0)
		return;
	if (idtab_make(o, r, &ids) == -1)
		return;
	if (frames_make(o, &f) == -1) {
		idtab_free(&ids);
		return;
	}
	run_job_init(&j.run, o, put_members_run);
	j.r = r;
	j.ids = &ids;
	j.f = &f;
	put_runs(o, &j.run, r->nmembers, MRUN_MEMBERS);
	/* the fills read j, ids and f: none at work when they go */
	gz_settle(o->sink.gz);
	frames_free(&f);
	idtab_free(&ids);
}

/* What the persons of a full file are rendered from, on any thread. */
struct persons_job {
	struct run_job		 run;	/* first: put_runs's view */
	const struct roster	*r;
	int			 pifu;	/* PROFILE_ITSLEARNING */
};

/* Persons lo..hi of the job's roster into o. */
static void
put_persons_run(struct out *o, const void *job, size_t lo, size_t hi)
{
	const struct persons_job *j = job;
	const struct roster *r = j->r;
	size_t i;

	for (i = lo; i < hi && !o->failed; i++) {
		/* a person's strings lie together, in the export's order */
		if (i + MPF_PERSON < r->npersons) {
			mem_prefetch(r->persons[i + MPF_PERSON].id);
			mem_prefetch(r->persons[i + MPF_PERSON].email);
		}
		if (j->pifu)
			put_person_pifu(o, &r->persons[i]);
		else
			put_person(o, &r->persons[i], REC_NONE);
	}
}

/*
 * Write every record of r (no recstatus) to path: created 0600, fsync'd
 * before close, removed again on any failure.  <type> is "full" (or
 * "delta" when opt->delta is set).  Returns 0, or -1 with the error set.
 */
int
ims_write_full(const char *path, const struct roster *r,
    const struct ims_options *opt)
{
	struct persons_job pj;
	struct out o;
	uint32_t *order = NULL, *depth = NULL;
	size_t i;

	if (group_order(path, r, &order, &depth) == -1)
		return -1;
	if (out_open(&o, path, opt) == -1) {
		free(order);
		free(depth);
		return -1;
	}
	put_header(&o, r, opt, opt->delta ? "delta" : "full");
	/* pj stays until out_close: the persons' chunks read it */
	run_job_init(&pj.run, &o, put_persons_run);
	pj.r = r;
	pj.pifu = opt->profile == PROFILE_ITSLEARNING;
	put_runs(&o, &pj.run, r->npersons, PRUN_PERSONS);
	for (i = 0; i < r->ngroups && !o.failed; i++)
		if (opt->profile == PROFILE_ITSLEARNING)
			put_group_pifu(&o, &r->groups[order[i]]);
		else
			put_group(&o, &r->groups[order[i]], depth[order[i]],
			    REC_NONE);
	put_members_full(&o, r);
	PUT(&o, "</enterprise>\n");
	free(order);
	free(depth);
	return out_close(&o);
}

/* ------------------------------------------------------------------ */
/* Deltas.                                                             */

static int
op_recstatus(int op)
{
	switch (op) {
	case OP_INSERT:
		return REC_ADD;
	case OP_UPDATE:
		return REC_UPDATE;
	default:
		return REC_DELETE;
	}
}

struct gchange {
	uint32_t	pos;		/* in cs->c[TYPE_GROUP] */
	uint32_t	depth;
	uint8_t		del;
};

/* Adds and updates first, parents before children; then deletes,
 * children before parents; ties in key order. */
static int
gchange_cmp(const void *a, const void *b)
{
	const struct gchange *x = a, *y = b;

	if (x->del != y->del)
		return x->del < y->del ? -1 : 1;
	if (x->depth != y->depth) {
		if (x->del)
			return x->depth > y->depth ? -1 : 1;
		return x->depth < y->depth ? -1 : 1;
	}
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int
check_index(const char *path, const char *what, uint32_t i, size_t n)
{
	if (i >= n)
		return error_set("%s: change set: %s index %u out of range",
		    path, what, (unsigned)i);
	return 0;
}

static void
put_persons_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	const struct change *c;
	size_t i;

	for (i = 0; i < cs->n[TYPE_PERSON] && !o->failed; i++) {
		c = &cs->c[TYPE_PERSON][i];
		if (c->op == OP_DELETE) {
			if (check_index(o->sink.path, "old person", c->old,
			    or->npersons) == -1) {
				o->failed = 1;
				return;
			}
			put_person(o, &or->persons[c->old], REC_DELETE);
		} else {
			if (check_index(o->sink.path, "new person", c->new,
			    nr->npersons) == -1) {
				o->failed = 1;
				return;
			}
			put_person(o, &nr->persons[c->new],
			    op_recstatus(c->op));
		}
	}
}

static int
put_groups_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	uint32_t *ndepth = NULL, *odepth = NULL, *unused = NULL;
	struct gchange *gc;
	const struct change *c;
	size_t i, n = cs->n[TYPE_GROUP], ndel = 0;
	int rc = -1;

	if (n == 0)
		return 0;
	if ((gc = calloc(n, sizeof(*gc))) == NULL)
		return error_sys("%s: group changes", o->sink.path);
	for (i = 0; i < n; i++) {
		c = &cs->c[TYPE_GROUP][i];
		if (c->op == OP_DELETE) {
			ndel++;
			if (check_index(o->sink.path, "old group", c->old,
			    or->ngroups) == -1)
				goto out;
		} else if (check_index(o->sink.path, "new group", c->new,
		    nr->ngroups) == -1)
			goto out;
	}
	if (ndel < n && group_order(o->sink.path, nr, &unused, &ndepth) == -1)
		goto out;
	free(unused);
	unused = NULL;
	if (ndel > 0 && group_order(o->sink.path, or, &unused, &odepth) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		c = &cs->c[TYPE_GROUP][i];
		gc[i].pos = (uint32_t)i;
		gc[i].del = c->op == OP_DELETE;
		gc[i].depth = gc[i].del ? odepth[c->old] : ndepth[c->new];
	}
	qsort(gc, n, sizeof(*gc), gchange_cmp);
	for (i = 0; i < n && !o->failed; i++) {
		c = &cs->c[TYPE_GROUP][gc[i].pos];
		if (gc[i].del)
			put_group(o, &or->groups[c->old], gc[i].depth,
			    REC_DELETE);
		else
			put_group(o, &nr->groups[c->new], gc[i].depth,
			    op_recstatus(c->op));
	}
	rc = o->failed ? -1 : 0;
out:
	free(gc);
	free(unused);
	free(ndepth);
	free(odepth);
	return rc;
}

static int
put_members_delta(struct out *o, const struct roster *nr,
    const struct roster *or, const struct changeset *cs)
{
	const struct change *c;
	const struct roster *r;
	const struct membership *m;
	const char *gkey, *open = NULL;
	size_t i;

	for (i = 0; i < cs->n[TYPE_MEMBER] && !o->failed; i++) {
		c = &cs->c[TYPE_MEMBER][i];
		r = c->op == OP_DELETE ? or : nr;
		if (check_index(o->sink.path, c->op == OP_DELETE ?
		    "old membership" : "new membership",
		    c->op == OP_DELETE ? c->old : c->new, r->nmembers) == -1)
			return -1;
		m = &r->members[c->op == OP_DELETE ? c->old : c->new];
		if (m->group >= r->ngroups || m->person >= r->npersons)
			return error_set("%s: membership %u: bad index",
			    o->sink.path, (unsigned)i);
		gkey = r->groups[m->group].id;
		if (open == NULL || strcmp(open, gkey) != 0) {
			if (open != NULL)
				put_membership_close(o);
			put_membership_open(o, gkey);
			open = gkey;
		}
		if (c->op == OP_DELETE)
			put_member(o, r->persons[m->person].id, m->role, 0,
			    REC_DELETE, NULL);
		else
			put_member(o, r->persons[m->person].id, m->role,
			    m->active, op_recstatus(c->op), m);
	}
	if (open != NULL)
		put_membership_close(o);
	return o->failed ? -1 : 0;
}

/*
 * Write the changes of cs (new roster nr, old roster or) with recstatus
 * 1/2/3 on person, group and role: adds and updates carry the new
 * record, deletes the old one (so a person delete has the old userid,
 * and a membership delete is <role recstatus="3"> with status 0).
 * Groups: adds and updates parents first, then deletes children first.
 * path is created 0600 and fsync'd; removed on failure.  0 or -1.
 */
int
ims_write_delta(const char *path, const struct roster *nr,
    const struct roster *or, const struct changeset *cs,
    const struct ims_options *opt)
{
	struct out o;

	if (opt->profile == PROFILE_ITSLEARNING)
		return error_set("%s: itslearning takes full files only",
		    path);
	if (out_open(&o, path, opt) == -1)
		return -1;
	put_header(&o, nr, opt, "delta");
	put_persons_delta(&o, nr, or, cs);
	if (!o.failed && put_groups_delta(&o, nr, or, cs) == -1)
		o.failed = 1;
	if (!o.failed && put_members_delta(&o, nr, or, cs) == -1)
		o.failed = 1;
	PUT(&o, "</enterprise>\n");
	return out_close(&o);
}

/* ------------------------------------------------------------------ */
/* The moodle profile (sisfeed.yaml.5, "The moodle profile").          */
/*
 * Moodle's enrol_imsenterprise reconciles nothing: it applies each
 * record it reads, matching persons by idnumber (update) or username
 * (delete) and courses by idnumber, and skips a file it has seen.  So
 * the moodle file carries, for every key the last nights touched (the
 * journal of formats/window.c) and tonight's changes, records that set
 * that key to what tonight's export holds, whatever Moodle holds now:
 *
 *   1. a person or course whose login or short name changed, or that
 *      is gone, is first renamed to a name of its own (TMP_PREFIX and
 *      a hash of its key), so that no rename or create below collides
 *      with a value Moodle still holds;
 *   2. gone persons are deleted by that name (never by a login a live
 *      person holds), gone courses hidden;
 *   3. live persons: recstatus 2 (update by idnumber; ignored if
 *      missing) then 1 (create if missing); courses: recstatus 2 (which
 *      creates a missing course);
 *   4. a pair (course, person) that lost a role: recstatus 3 (Moodle
 *      unenrols every role) and each current role added again; one that
 *      only gained roles: adds.
 */

#define TMP_PREFIX	"sisfeed-tmp-"
#define T_TOUCHED	0x01
#define T_FREE		0x02	/* rename out of the way first / lost */

struct gone_pair {
	char		*group;
	char		*person;
};

struct touched {
	char		*text;		/* the journal, unescaped in place */
	uint8_t		*pf, *gf, *mf;	/* per person, group, member */
	char		**gp, **gg;	/* keys of gone persons, groups */
	size_t		 ngp, ngg, capgp, capgg;
	struct gone_pair *gm;
	size_t		 ngm, capgm;
};

static void
touched_free(struct touched *t)
{
	free(t->text);
	free(t->pf);
	free(t->gf);
	free(t->mf);
	free(t->gp);
	free(t->gg);
	free(t->gm);
	memset(t, 0, sizeof(*t));
}

static int
push_key(char ***v, size_t *n, size_t *cap, char *key)
{
	char **nv;

	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		if ((nv = reallocarray(*v, *cap, sizeof(**v))) == NULL)
			return error_sys("journal");
		*v = nv;
	}
	(*v)[(*n)++] = key;
	return 0;
}

static int
push_pair(struct touched *t, char *g, char *p)
{
	struct gone_pair *nv;

	if (t->ngm == t->capgm) {
		t->capgm = t->capgm ? t->capgm * 2 : 64;
		if ((nv = reallocarray(t->gm, t->capgm, sizeof(*nv))) == NULL)
			return error_sys("journal");
		t->gm = nv;
	}
	t->gm[t->ngm].group = g;
	t->gm[t->ngm].person = p;
	t->ngm++;
	return 0;
}

/* The first membership of (g, p) in r, or r->nmembers. */
static size_t
pair_lower(const struct roster *r, uint32_t g, uint32_t p)
{
	size_t lo = 0, hi = r->nmembers, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->members[mid].group < g || (r->members[mid].group == g &&
		    r->members[mid].person < p))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void
touch_all(const struct roster *r, struct touched *t, int flag)
{
	size_t i;

	for (i = 0; i < r->npersons; i++)
		t->pf[i] |= T_TOUCHED | flag;
	for (i = 0; i < r->ngroups; i++)
		t->gf[i] |= T_TOUCHED | flag;
	for (i = 0; i < r->nmembers; i++)
		if (i == 0 || r->members[i].group != r->members[i - 1].group ||
		    r->members[i].person != r->members[i - 1].person)
			t->mf[i] |= T_TOUCHED | flag;
}

static int
touch_pair(const struct roster *r, struct touched *t, char *key, int flag)
{
	char *tab = strchr(key, '\t');
	long g, p;
	size_t i;

	if (tab == NULL)
		return error_set("journal: pair without a TAB");
	*tab = '\0';
	window_unescape(key, strlen(key));
	window_unescape(tab + 1, strlen(tab + 1));
	g = roster_find_group(r, key);
	p = roster_find_person(r, tab + 1);
	if (g >= 0 && p >= 0) {
		i = pair_lower(r, (uint32_t)g, (uint32_t)p);
		if (i < r->nmembers && r->members[i].group == (uint32_t)g &&
		    r->members[i].person == (uint32_t)p) {
			t->mf[i] |= T_TOUCHED | flag;
			return 0;
		}
	}
	return push_pair(t, key, tab + 1);
}

/* One journal line: "p F KEY", "g F KEY", "m F G<TAB>P", "night ...". */
static int
touch_line(const struct roster *r, struct touched *t, char *line)
{
	int flag;
	long i;
	char *key;

	if (strncmp(line, "night ", 6) == 0 ||
	    strncmp(line, "tried ", 6) == 0) {
		size_t n = strlen(line);

		if (n > 4 && strcmp(line + n - 4, " all") == 0)
			touch_all(r, t, 0);
		else if (n > 9 && strcmp(line + n - 9, " all free") == 0)
			touch_all(r, t, T_FREE);
		return 0;
	}
	if (strlen(line) < 4 || line[1] != ' ' || line[3] != ' ' ||
	    (line[2] != '0' && line[2] != '1'))
		return error_set("journal: bad line '%.40s'", line);
	flag = line[2] == '1' ? T_FREE : 0;
	key = line + 4;
	switch (line[0]) {
	case 'p':
		window_unescape(key, strlen(key));
		if ((i = roster_find_person(r, key)) >= 0) {
			t->pf[i] |= T_TOUCHED | flag;
			return 0;
		}
		return push_key(&t->gp, &t->ngp, &t->capgp, key);
	case 'g':
		window_unescape(key, strlen(key));
		if ((i = roster_find_group(r, key)) >= 0) {
			t->gf[i] |= T_TOUCHED | flag;
			return 0;
		}
		return push_key(&t->gg, &t->ngg, &t->capgg, key);
	case 'm':
		return touch_pair(r, t, key, flag);
	}
	return error_set("journal: bad line '%.40s'", line);
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
pair_cmp(const void *a, const void *b)
{
	const struct gone_pair *x = a, *y = b;
	int c = strcmp(x->group, y->group);

	return c != 0 ? c : strcmp(x->person, y->person);
}

/* Sort and drop repeats. */
static size_t
uniq_keys(char **v, size_t n)
{
	size_t i, o = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), str_cmp);
	for (i = 0; i < n; i++)
		if (o == 0 || strcmp(v[o - 1], v[i]) != 0)
			v[o++] = v[i];
	return o;
}

static size_t
uniq_pairs(struct gone_pair *v, size_t n)
{
	size_t i, o = 0;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), pair_cmp);
	for (i = 0; i < n; i++)
		if (o == 0 || pair_cmp(&v[o - 1], &v[i]) != 0)
			v[o++] = v[i];
	return o;
}

/* Resolve the journal text[0..len) against tonight's roster r. */
static int
touched_load(const struct roster *r, const char *text, size_t len,
    struct touched *t)
{
	char *line, *nl;

	memset(t, 0, sizeof(*t));
	if ((t->text = malloc(len + 1)) == NULL ||
	    (t->pf = calloc(r->npersons + 1, 1)) == NULL ||
	    (t->gf = calloc(r->ngroups + 1, 1)) == NULL ||
	    (t->mf = calloc(r->nmembers + 1, 1)) == NULL) {
		touched_free(t);
		return error_sys("journal");
	}
	memcpy(t->text, text, len);
	t->text[len] = '\0';
	for (line = t->text; *line != '\0'; line = nl + 1) {
		if ((nl = strchr(line, '\n')) == NULL)
			nl = line + strlen(line) - 1;
		else
			*nl = '\0';
		if (*line != '\0' && touch_line(r, t, line) == -1) {
			touched_free(t);
			return -1;
		}
	}
	t->ngp = uniq_keys(t->gp, t->ngp);
	t->ngg = uniq_keys(t->gg, t->ngg);
	t->ngm = uniq_pairs(t->gm, t->ngm);
	return 0;
}

/* TMP_PREFIX and 24 hex digits of the SHA-256 of key, into buf[40]. */
static void
tmp_name(const char *key, char *buf)
{
	struct sha256 h;
	unsigned char d[32];

	sha256_init(&h);
	sha256_update(&h, key, strlen(key));
	sha256_final(&h, d);
	memcpy(buf, TMP_PREFIX, sizeof(TMP_PREFIX) - 1);
	sha256_hex(d, 12, buf + sizeof(TMP_PREFIX) - 1);
}

/* The login as Moodle keeps it: ASCII lower case. */
static void
put_login(struct out *o, const char *s)
{
	char buf[256];
	size_t i = 0;

	for (; *s != '\0'; s++) {
		buf[i++] = *s >= 'A' && *s <= 'Z' ? (char)(*s - 'A' + 'a') :
		    *s;
		if (i == sizeof(buf) - 1) {
			buf[i] = '\0';
			put_escaped(o, "userid", buf, 0);
			i = 0;
		}
	}
	buf[i] = '\0';
	put_escaped(o, "userid", buf, 0);
}

/*
 * A moodle <person>: p the live record (NULL: only key), login NULL for
 * p's own.  authenticationtype is the first (only) attribute, as
 * Moodle's pattern wants.
 */
static void
mput_person(struct out *o, const char *key, const struct person *p,
    const char *login, const char *auth, int rec)
{
	o->kind = "person";
	o->key = key;
	PUT(o, "  <person");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, key);
	PUT(o, "    <userid authenticationtype=\"");
	put_escaped(o, "auth", auth, 1);
	PUT(o, "\">");
	if (login != NULL)
		put_str(o, login);
	else
		put_login(o, p->userid);
	PUT(o, "</userid>\n");
	if (p == NULL) {
		PUT(o, "    <name>\n      <fn></fn>\n    </name>\n  </person>\n");
		out_record_done(o);
		return;
	}
	put_name(o, p);
	put_elem(o, 2, "email", p->email);
	PUT(o, "  </person>\n");
	out_record_done(o);
}

static void
mput_persons(struct out *o, const struct roster *r, const struct touched *t,
    const char *auth)
{
	char tmp[48];
	size_t i;

	for (i = 0; i < r->npersons; i++)
		if ((t->pf[i] & T_FREE) != 0) {
			const struct person *p = &r->persons[i];

			tmp_name(p->id, tmp);
			mput_person(o, p->id, p, tmp, p->active ? auth :
			    "nologin", REC_UPDATE);
		}
	for (i = 0; i < t->ngp; i++) {
		tmp_name(t->gp[i], tmp);
		mput_person(o, t->gp[i], NULL, tmp, "nologin", REC_UPDATE);
	}
	for (i = 0; i < t->ngp; i++) {
		tmp_name(t->gp[i], tmp);
		mput_person(o, t->gp[i], NULL, tmp, "nologin", REC_DELETE);
	}
	for (i = 0; i < r->npersons && !o->failed; i++)
		if ((t->pf[i] & T_TOUCHED) != 0) {
			const struct person *p = &r->persons[i];
			const char *a = p->active ? auth : "nologin";

			mput_person(o, p->id, p, NULL, a, REC_UPDATE);
			mput_person(o, p->id, p, NULL, a, REC_ADD);
		}
}

/* A moodle <group>: short, long (if any) and full (long or short). */
static void
mput_group(struct out *o, const char *key, const char *shortname,
    const char *longname, int rec)
{
	o->kind = "group";
	o->key = key;
	PUT(o, "  <group");
	put_recstatus(o, rec);
	PUT(o, ">\n");
	put_sourcedid(o, 2, key);
	PUT(o, "    <description>\n");
	put_elem(o, 3, "short", shortname);
	if (*longname != '\0')
		put_elem(o, 3, "long", longname);
	put_elem(o, 3, "full", *longname != '\0' ? longname : shortname);
	PUT(o, "    </description>\n  </group>\n");
	out_record_done(o);
}

static void
mput_groups(struct out *o, const struct roster *r, const struct touched *t)
{
	char tmp[48];
	size_t i;

	for (i = 0; i < r->ngroups; i++)
		if ((t->gf[i] & T_FREE) != 0) {
			tmp_name(r->groups[i].id, tmp);
			mput_group(o, r->groups[i].id, tmp, "", REC_UPDATE);
		}
	for (i = 0; i < t->ngg; i++) {
		tmp_name(t->gg[i], tmp);
		mput_group(o, t->gg[i], tmp, "", REC_UPDATE);
		mput_group(o, t->gg[i], tmp, "", REC_DELETE);
	}
	for (i = 0; i < r->ngroups && !o->failed; i++)
		if ((t->gf[i] & T_TOUCHED) != 0)
			mput_group(o, r->groups[i].id, r->groups[i].shortname,
			    r->groups[i].longname, REC_UPDATE);
}

/* The records of the touched pair starting at members[i]; returns the
 * index past the pair. */
static size_t
mput_pair(struct out *o, const struct roster *r, const struct touched *t,
    size_t i)
{
	const struct membership *m = &r->members[i];
	const char *pid = r->persons[m->person].id;
	size_t j;
	int any = 0;

	for (j = i; j < r->nmembers && r->members[j].group == m->group &&
	    r->members[j].person == m->person; j++)
		any |= r->members[j].active;
	if ((t->mf[i] & T_FREE) != 0 || !any)
		put_member(o, pid, 1, 0, REC_DELETE, NULL);
	for (j = i; j < r->nmembers && r->members[j].group == m->group &&
	    r->members[j].person == m->person; j++)
		if (r->members[j].active)
			put_member(o, pid, r->members[j].role, 1, REC_ADD,
			    &r->members[j]);
	return j;
}

static void
mput_members(struct out *o, const struct roster *r, const struct touched *t)
{
	size_t i = 0, k;
	long open = -1;

	while (i < r->nmembers && !o->failed) {
		if ((t->mf[i] & T_TOUCHED) == 0) {
			i++;
			continue;
		}
		if (open != (long)r->members[i].group) {
			if (open >= 0)
				put_membership_close(o);
			open = (long)r->members[i].group;
			put_membership_open(o, r->groups[open].id);
		}
		i = mput_pair(o, r, t, i);
	}
	if (open >= 0)
		put_membership_close(o);
	for (k = 0; k < t->ngm && !o->failed; k++) {
		if (k == 0 || strcmp(t->gm[k - 1].group, t->gm[k].group) != 0)
			put_membership_open(o, t->gm[k].group);
		put_member(o, t->gm[k].person, 1, 0, REC_DELETE, NULL);
		if (k + 1 == t->ngm ||
		    strcmp(t->gm[k + 1].group, t->gm[k].group) != 0)
			put_membership_close(o);
	}
}

/*
 * Write the moodle file for tonight's roster r from the journal
 * text[0..len) (the earlier nights of the window and tonight's, see
 * window_night): path is created 0600 and fsync'd, removed on failure.
 * auth is the authentication plugin of active persons.  0 or -1.
 */
int
ims_write_moodle(const char *path, const struct roster *r, const char *text,
    size_t len, const struct ims_options *opt, const char *auth)
{
	struct touched t;
	struct out o;

	if (touched_load(r, text, len, &t) == -1)
		return -1;
	if (out_open(&o, path, opt) == -1) {
		touched_free(&t);
		return -1;
	}
	put_header(&o, r, opt, "delta");
	mput_persons(&o, r, &t, auth);
	if (!o.failed)
		mput_groups(&o, r, &t);
	if (!o.failed)
		mput_members(&o, r, &t);
	PUT(&o, "</enterprise>\n");
	touched_free(&t);
	return out_close(&o);
}

/* ------------------------------------------------------------------ */
/* What the moodle profile's receiver cannot take.                     */

/* Moodle's column sizes (characters, lib/db/install.xml).  The short
 * name: Moodle 4.5 measured (FORMAT.md 9) aborts its import on one over
 * 254 characters, whatever install.xml declares. */
#define ML_USERNAME	100
#define ML_USER_ID	255
#define ML_NAME		100
#define ML_EMAIL	100
#define ML_COURSE_ID	100
#define ML_SHORT	254
#define ML_FULL		254

/* The characters Moodle stores for s: it keeps &amp; &lt; &gt; as they
 * are in the file. */
static size_t
moodle_len(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = 0;

	for (; *p != '\0'; p++) {
		if ((*p & 0xC0) == 0x80)
			continue;
		n += *p == '&' ? 5 : *p == '<' || *p == '>' ? 4 : 1;
	}
	return n;
}

static int
has_entity_char(const char *s)
{
	return strpbrk(s, "&<>") != NULL;
}

static int
ascii_casecmp(const char *a, const char *b)
{
	unsigned char x, y;

	for (;; a++, b++) {
		x = (unsigned char)*a;
		y = (unsigned char)*b;
		if (x >= 'A' && x <= 'Z')
			x = (unsigned char)(x - 'A' + 'a');
		if (y >= 'A' && y <= 'Z')
			y = (unsigned char)(y - 'A' + 'a');
		if (x != y || x == '\0')
			return x - y;
	}
}

struct screen {
	struct roster	*r;
	struct rejects	*rj;
	const char	*pfile, *gfile, *mfile;
	uint8_t		*pdead, *gdead;
	size_t		 altered;
};

/* Mark a record rejected (*dead) and say why in the rejects file;
 * max > 0: the value has `have` characters, more than max. */
static int
reject_record(struct screen *s, uint8_t *dead, const char *kind,
    const char *id, const char *file, uint32_t line, const char *field,
    const char *why, size_t have, size_t max)
{
	char q[128];

	*dead = 1;
	rejects_quote(id, strlen(id), q, sizeof(q));
	if (max > 0)
		return rejects_add(s->rj, file, line, field, "%s '%s': %s "
		    "(%zu characters as Moodle stores it, at most %zu)", kind,
		    q, why, have, max);
	return rejects_add(s->rj, file, line, field, "%s '%s': %s", kind, q,
	    why);
}

static int
reject_person(struct screen *s, size_t i, const char *field,
    const char *why, size_t have, size_t max)
{
	const struct person *p = &s->r->persons[i];

	return reject_record(s, &s->pdead[i], "person", p->id, s->pfile,
	    p->line, field, why, have, max);
}

static int
reject_group(struct screen *s, size_t i, const char *field,
    const char *why, size_t have, size_t max)
{
	const struct group *g = &s->r->groups[i];

	return reject_record(s, &s->gdead[i], "group", g->id, s->gfile,
	    g->line, field, why, have, max);
}

/* A column size: the record's string at off must fit max. */
struct limit {
	const char	*field;		/* in the export */
	const char	*column;	/* in Moodle */
	size_t		 off;
	size_t		 max;
};

static const struct limit person_limits[] = {
	{ "id", "user.idnumber", offsetof(struct person, id), ML_USER_ID },
	{ "userid", "user.username", offsetof(struct person, userid),
	    ML_USERNAME },
	{ "given", "user.firstname", offsetof(struct person, given), ML_NAME },
	{ "family", "user.lastname", offsetof(struct person, family),
	    ML_NAME },
	{ "email", "user.email", offsetof(struct person, email), ML_EMAIL },
	{ NULL, NULL, 0, 0 }
};

static const struct limit group_limits[] = {
	{ "id", "course.idnumber", offsetof(struct group, id), ML_COURSE_ID },
	{ "short", "course.shortname", offsetof(struct group, shortname),
	    ML_SHORT },
	{ NULL, NULL, 0, 0 }
};

/* The first limit rec breaks, or NULL; *n gets its length. */
static const struct limit *
over_limit(const void *rec, const struct limit *l, size_t *n)
{
	for (; l->field != NULL; l++) {
		const char *v = *(const char *const *)(const void *)
		    ((const char *)rec + l->off);

		if ((*n = moodle_len(v)) > l->max)
			return l;
	}
	return NULL;
}

/* One person's own limits; 0 or -1. */
static int
screen_person(struct screen *s, size_t i)
{
	const struct person *p = &s->r->persons[i];
	const struct limit *l;
	char why[96];
	size_t n;

	if (*p->userid == '\0')
		return reject_person(s, i, "userid", "empty: Moodle needs a "
		    "login", 0, 0);
	if (strncasecmp(p->userid, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
		return reject_person(s, i, "userid", "logins starting "
		    TMP_PREFIX " are the moodle profile's own", 0, 0);
	if ((l = over_limit(p, person_limits, &n)) == NULL)
		return 0;
	snprintf(why, sizeof(why), "too long for Moodle's %s", l->column);
	return reject_person(s, i, l->field, why, n, l->max);
}

static struct screen *sort_screen;	/* for the qsort comparators */

static int
login_cmp(const void *a, const void *b)
{
	const struct person *p = sort_screen->r->persons;

	return ascii_casecmp(p[*(const uint32_t *)a].userid,
	    p[*(const uint32_t *)b].userid);
}

static int
short_cmp(const void *a, const void *b)
{
	const struct group *g = sort_screen->r->groups;

	return strcmp(g[*(const uint32_t *)a].shortname,
	    g[*(const uint32_t *)b].shortname);
}

/*
 * Reject every copy of a value two records share: n records, their
 * indexes sorted by cmp.  Returns 0 or -1.
 */
static int
screen_dups(struct screen *s, uint32_t *ix, size_t n,
    int (*cmp)(const void *, const void *), int persons)
{
	size_t i, j, k;

	if (n == 0)
		return 0;
	sort_screen = s;
	qsort(ix, n, sizeof(*ix), cmp);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && cmp(&ix[i], &ix[j]) == 0; j++)
			;
		for (k = i; j - i > 1 && k < j; k++) {
			if (persons && reject_person(s, ix[k], "userid",
			    "the same login as another person (Moodle "
			    "matches logins in lower case)", 0, 0) == -1)
				return -1;
			if (!persons && reject_group(s, ix[k], "short", "the "
			    "same short name as another group (Moodle's "
			    "course short names are unique)", 0, 0) == -1)
				return -1;
		}
	}
	return 0;
}

static int
screen_group(struct screen *s, size_t i)
{
	const struct group *g = &s->r->groups[i];
	const struct limit *l;
	char why[96];
	size_t n;

	if (strncmp(g->shortname, TMP_PREFIX, sizeof(TMP_PREFIX) - 1) == 0)
		return reject_group(s, i, "short", "short names starting "
		    TMP_PREFIX " are the moodle profile's own", 0, 0);
	if ((l = over_limit(g, group_limits, &n)) != NULL) {
		snprintf(why, sizeof(why), "too long for Moodle's %s",
		    l->column);
		return reject_group(s, i, l->field, why, n, l->max);
	}
	if ((n = moodle_len(*g->longname ? g->longname : g->shortname)) >
	    ML_FULL)
		return reject_group(s, i, *g->longname ? "long" : "short",
		    "too long for Moodle's course.fullname", n, ML_FULL);
	return 0;
}

/* Name each record (all kept: this runs after the drop) whose values
 * Moodle stores with entities. */
static void
screen_altered(struct screen *s)
{
	size_t i;

	for (i = 0; i < s->r->npersons; i++) {
		const struct person *p = &s->r->persons[i];

		if (!(has_entity_char(p->userid) ||
		    has_entity_char(p->given) || has_entity_char(p->family) ||
		    has_entity_char(p->email)))
			continue;
		s->altered++;
		log_warn("%s:%u: person '%s': Moodle will store '&', '<' and "
		    "'>' in its login, names or email as &amp;, &lt;, &gt;",
		    s->pfile, (unsigned)p->line, p->id);
	}
	for (i = 0; i < s->r->ngroups; i++) {
		const struct group *g = &s->r->groups[i];

		if (!(has_entity_char(g->shortname) ||
		    has_entity_char(g->longname)))
			continue;
		s->altered++;
		log_warn("%s:%u: group '%s': Moodle will store '&', '<' and "
		    "'>' in its names as &amp;, &lt;, &gt;", s->gfile,
		    (unsigned)g->line, g->id);
	}
}

static int
screen_moodle(struct screen *s)
{
	struct roster *r = s->r;
	uint32_t *ix;
	size_t i, n;

	for (i = 0; i < r->npersons; i++)
		if (screen_person(s, i) == -1)
			return -1;
	for (i = 0; i < r->ngroups; i++)
		if (screen_group(s, i) == -1)
			return -1;
	n = r->npersons > r->ngroups ? r->npersons : r->ngroups;
	if ((ix = calloc(n + 1, sizeof(*ix))) == NULL)
		return error_sys("screen");
	for (i = n = 0; i < r->npersons; i++)
		if (!s->pdead[i])
			ix[n++] = (uint32_t)i;
	if (screen_dups(s, ix, n, login_cmp, 1) == -1) {
		free(ix);
		return -1;
	}
	for (i = n = 0; i < r->ngroups; i++)
		if (!s->gdead[i])
			ix[n++] = (uint32_t)i;
	if (screen_dups(s, ix, n, short_cmp, 0) == -1) {
		free(ix);
		return -1;
	}
	free(ix);
	for (i = 0; i < r->npersons && !s->pdead[i]; i++)
		;
	for (n = 0; i == r->npersons && n < r->ngroups && !s->gdead[n]; n++)
		;
	/* the groups below and the memberships go as dependents */
	if ((i < r->npersons || n < r->ngroups) && roster_drop(r, s->pdead,
	    s->gdead, s->rj, s->pfile, s->gfile, s->mfile) == -1)
		return -1;
	screen_altered(s);
	return 0;
}

/*
 * Take out of the sealed roster r the records the profile's receiver
 * would choke on, each into rj with the reason (pfile, gfile and mfile
 * name the sources), and the groups below them and the memberships
 * that name them (as dependents: roster_drop).
 * *altered gets the number of records whose values the receiver stores
 * differently, each named in a warning.  The generic profile takes
 * everything.  Returns 0, or -1 on I/O error or no memory.
 */
int
ims_screen(const struct ims_options *opt, struct roster *r,
    struct rejects *rj, const char *pfile, const char *gfile,
    const char *mfile, size_t *altered)
{
	struct screen s;
	size_t i;
	int rc;

	*altered = 0;
	if (opt->profile != PROFILE_ITSLEARNING || !opt->nin)
		for (i = 0; i < r->npersons; i++)
			r->persons[i].nin = "";
	if (opt->profile == PROFILE_ITSLEARNING)
		return pifu_fit(r, rj, pfile, gfile, mfile);
	if (opt->profile != PROFILE_MOODLE)
		return 0;
	memset(&s, 0, sizeof(s));
	s.r = r;
	s.rj = rj;
	s.pfile = pfile;
	s.gfile = gfile;
	s.mfile = mfile;
	if ((s.pdead = calloc(r->npersons + 1, 1)) == NULL ||
	    (s.gdead = calloc(r->ngroups + 1, 1)) == NULL) {
		free(s.pdead);
		return error_sys("screen");
	}
	rc = screen_moodle(&s);
	*altered = s.altered;
	free(s.pdead);
	free(s.gdead);
	return rc;
}
