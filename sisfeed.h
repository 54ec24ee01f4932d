/*
 * sisfeed.h -- the one header: the model and the contract of every module.
 *
 * The nightly run is a straight line (agent/run.c):
 *   formats (read) -> roster -> filters/diff -> formats/ims_write ->
 *   filters/safety -> agent/deliver (dir or sftp) -> agent/snapshot ->
 *   agent/mail.
 * No stage calls back up.  Every function that can fail returns -1 (or
 * NULL) and leaves a message for error_last(); callers return early.
 */
#ifndef SISFEED_H
#define SISFEED_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#define SISFEED_VERSION "0.1.0"

/* Exit codes (sisfeed.8). */
#define EXIT_OK		0	/* delivered, or nothing to do */
#define EXIT_FAILED	1	/* the run failed */
#define EXIT_USAGE	2	/* usage or config error */
#define EXIT_BLOCKED	3	/* blocked by the safety filter */
#define EXIT_LOCKED	4	/* another run holds the lock */

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* ------------------------------------------------------------------ */
/* lib/log.c: the last error message (one per thread), and logging.   */

/* Record a formatted error message; returns -1 so callers can write
 * "return error_set(...)". */
int	 error_set(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Like error_set, then appends ": strerror(errno)". Returns -1. */
int	 error_sys(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* Put a formatted prefix before the last message (which the arguments
 * may not point into); returns -1.  The way to add context to an error
 * from below, never error_set("...%s", error_last()). */
int	 error_prefix(const char *fmt, ...) PRINTF_LIKE(1, 2);
/* The last message recorded in this thread, or "" if none. */
const char *error_last(void);
/* Forget the last message. */
void	 error_clear(void);

/* SIGKILL here when SISFEED_CRASH_AFTER names this point (the crash
 * tests); nothing otherwise. */
void	 fault_point(const char *name);

/* ------------------------------------------------------------------ */
/* lib/log.c: messages to stderr (no colour, cron-friendly).           */

/* On a terminal messages go to stderr; under systemd (JOURNAL_STREAM
 * is stderr) to the journal with priorities; otherwise (cron) to
 * syslog (daemon facility, with the run id) and stderr. */
extern int log_verbosity;	/* 0 quiet, 1 normal, 2 verbose */
/* The run id that journal and syslog messages carry (NULL: none). */
void	 log_set_run(const char *id);
void	 log_info(const char *fmt, ...) PRINTF_LIKE(1, 2);
void	 log_debug(const char *fmt, ...) PRINTF_LIKE(1, 2);
void	 log_warn(const char *fmt, ...) PRINTF_LIKE(1, 2);
void	 log_error(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* ------------------------------------------------------------------ */
/* lib/fileio.c: paths, full writes and atomic file replacement.       */

/* snprintf into a path buffer; -1 (error set) if it does not fit. */
int	 path_fmt(char *buf, size_t len, const char *fmt, ...)
	    PRINTF_LIKE(3, 4);
/* fsync the directory holding path (a rename in it is durable). */
int	 fsync_dir_of(const char *path);
/* fsync a file by path and its directory.  0 or -1. */
int	 fsync_path(const char *path);
/* Write all of buf to fd (short writes, EINTR); 0, or -1 with errno. */
int	 fd_write(int fd, const void *buf, size_t len);
/* Temporary names: DIR/.sisfeed.NAME.XXXXXX.part (a leading dot and a
 * suffix: no importer's pattern for NAME matches). */
#define FILE_TEMP_PREFIX	".sisfeed."
#define FILE_TEMP_SUFFIX	".part"
/* Remove leftover temporary files (regular .sisfeed.*.part) in dir.
 * Returns the count removed, or -1 if dir cannot be read. */
int	 file_clean_temps(const char *dir);
/* Write len bytes to path atomically (temp, fsync, rename), mode 0600.
 * Only a missing or regular path is replaced: a symbolic link, device
 * or FIFO there is an error (this holds for file_copy_atomic too). */
int	 file_write_atomic(const char *path, const void *, size_t len);
/* Copy src to dst atomically (temp in dst's directory with the given
 * mode, fsync, rename).  0 or -1. */
int	 file_copy_atomic(const char *src, const char *dst, mode_t mode,
	    off_t *size);

/* ------------------------------------------------------------------ */
/* lib/mem.c: big arrays.                                              */

/* lib/crc.c: the CRC-32 of p[0..n) continuing crc (start with 0), the
 * same as zlib's crc32(), folded by carry-less multiplication where the
 * CPU can.  Never fails. */
uint32_t crc_update(uint32_t crc, const void *p, size_t n);

/* lib/thread.c: start fn(arg) on a new thread (*tid) with every signal
 * blocked in it, so signals stay with the main thread.  0, or
 * pthread_create's error number. */
int	 thread_start(pthread_t *tid, void *(*fn)(void *), void *arg);

/* lib/thread.c: fn(arg, lo, hi) over [0, n), cut in two halves run on
 * two threads when n >= min and two CPUs are online, else in one call
 * here.  Never fails. */
void	 thread_split(size_t n, size_t min,
	    void (*fn)(void *, size_t, size_t), void *arg);

/* lib/zchunk.c: raw deflate (fastest level) of chunks compressed
 * independently that, written in order, make one deflate stream: every
 * chunk but the last ends on a byte boundary (a sync flush), the last
 * with the final block.  ISA-L's igzip when the build has it, else
 * zlib.  One struct zchunk per thread. */
struct zchunk;
/* A compressor.  NULL (errno set) when out of memory. */
struct zchunk *zchunk_new(void);
/* Free a compressor; NULL is fine. */
void	 zchunk_free(struct zchunk *);
/* Compress in[0..n) as one chunk (the stream's last if last) into *out
 * (capacity *cap, grown with realloc as needed), *outlen its length.
 * 0, or -1 with errno set (ENOMEM; EPROTO: the engine failed). */
int	 zchunk_compress(struct zchunk *, const void *in, size_t n,
	    int last, unsigned char **out, size_t *cap, size_t *outlen);
/* Room for n bytes compressed in one go.  Never fails. */
size_t	 zchunk_bound(size_t n);
/* "isa-l" or "zlib".  Never fails. */
const char *zchunk_engine(void);

/* Ask for huge pages under the big array p[0..len), advising every page
 * it touches (advice on part of a mapping splits it, and realloc then
 * copies instead of moving it); a hint: nothing happens when the kernel
 * cannot.  Never fails. */
void	 mem_hint_huge(void *p, size_t len);

/* Start loading the cache line at p (a hint: p need not be valid).
 * GCC 12 drops a __builtin_prefetch whose address it loads from memory
 * in a loop with calls (measured: put_members_full had none), so on x86
 * this is the instruction itself. */
static inline void
mem_prefetch(const void *p)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#elif defined(__GNUC__)
	__builtin_prefetch(p);
#else
	(void)p;
#endif
}

/* ------------------------------------------------------------------ */
/* formats/roster.c: strings that live as long as their roster.        */

struct arena_block;
struct arena {
	struct arena_block	*head;
	size_t			 bytes;	/* total payload, for stats */
};

/* Copy len bytes of s plus a NUL into the arena.  Returns the copy, or
 * NULL (error set) when memory runs out. */
char	*arena_strndup(struct arena *, const char *s, size_t len);
/* Reserve len bytes (aligned to 8).  NULL on out of memory. */
void	*arena_alloc(struct arena *, size_t len);
/* Free every block; the arena is empty and reusable afterwards. */
void	 arena_free(struct arena *);
/* Move every block of src into dst (src is left empty).  Never fails. */
void	 arena_join(struct arena *dst, struct arena *src);

/* ------------------------------------------------------------------ */
/* filters/sha256.c: SHA-256 (approval ids, snapshot identity).        */

struct sha256 {
	uint32_t	state[8];
	uint64_t	count;
	unsigned char	buf[64];
};
void	 sha256_init(struct sha256 *);
void	 sha256_update(struct sha256 *, const void *, size_t);
void	 sha256_final(struct sha256 *, unsigned char out[32]);
/* Lower-case hex of the first n bytes of digest into out (2n+1). */
void	 sha256_hex(const unsigned char *digest, size_t n, char *out);

/* ------------------------------------------------------------------ */
/* formats/roster.c: the model.                                        */

enum sf_type { TYPE_PERSON, TYPE_GROUP, TYPE_MEMBER, NTYPES };
enum sf_op { OP_INSERT, OP_UPDATE, OP_DELETE, NOPS };
/* A status flip, a kind of update judged on its own. */
enum sf_flip { FLIP_DEACTIVATE, FLIP_REACTIVATE, NFLIPS };
/* The kinds a safety cell counts: the operations, then the flips. */
#define KIND_DEACTIVATE	(NOPS + FLIP_DEACTIVATE)
#define KIND_REACTIVATE	(NOPS + FLIP_REACTIVATE)
#define NKINDS		(NOPS + NFLIPS)

/*
 * A person.  Every string is non-NULL ("" when absent) and lives in the
 * roster's arena.  id is the sync key: case-sensitive, never empty.
 */
struct person {
	const char	*id;
	const char	*userid;
	const char	*given;
	const char	*family;
	const char	*email;
	const char	*role;		/* IMS institutionroletype or "" */
	const char	*nin;		/* national identity number, "" unless
					 * the config maps one (itslearning) */
	uint32_t	 line;		/* source line, for messages */
	uint8_t		 active;	/* 1 active, 0 inactive */
};

/* A group: school, course, class, ... */
struct group {
	const char	*id;
	const char	*type;		/* grouptype typevalue, "" if none */
	const char	*shortname;	/* description/short, never "" */
	const char	*longname;	/* description/long or "" */
	const char	*parent;	/* parent group's key or "" */
	const char	*term;		/* timeframe/adminperiod or "" */
	/* Carried from the export for profiles that write them (issue 10). */
	const char	*begin;		/* timeframe/begin (a date) or "" */
	const char	*end;		/* timeframe/end (a date) or "" */
	const char	*orgname;	/* org/orgname or "" */
	const char	*orgunit;	/* org/orgunit or "" */
	uint32_t	 line;
};

/*
 * A membership of one person in one group with one role.  group and
 * person are indexes into the roster's sorted arrays, so sorting by
 * (group, person, role) is sorting by key.  begin and end are the
 * role's timeframe (issue 10) as days since 1970-01-01 (day_parse),
 * 0 when open; 16 bytes with the padding, which is kept zero (the
 * snapshot index writes it).
 */
struct membership {
	uint32_t	 group;
	uint32_t	 person;
	uint8_t		 role;		/* IMS roletype 1..8 */
	uint8_t		 active;
	uint16_t	 begin;		/* first day, 0: open */
	uint16_t	 end;		/* last day, 0: open */
};

struct roster {
	struct arena		 strings;
	struct person		*persons;
	size_t			 npersons, cappersons;
	struct group		*groups;
	size_t			 ngroups, capgroups;
	struct membership	*members;
	size_t			 nmembers, capmembers;
	time_t			 datetime;	/* <properties><datetime> */
	/* A roster loaded from a snapshot index (rindex_read) keeps its
	 * strings and members in the index file's mapping, not in the
	 * arena and a malloc'd array: NULL otherwise. */
	void			*map;
	size_t			 maplen;
	/* The array a part of the memberships was read into, kept by
	 * roster_append_members for roster_seal_members' sort buffer:
	 * its pages are the process's already, where a fresh array's
	 * each cost a fault and the kernel clearing it.  NULL if none. */
	void			*spare;
	size_t			 sparelen;
};

/* Where rejected records go: "file:line: field: reason", one a line. */
struct rejects {
	FILE		*fp;		/* NULL: count only */
	size_t		 count;		/* really wrong: for max_rejects */
	size_t		 records;	/* records read, for the ratio */
	/* Reading rules (issue 10): not counted in count. */
	size_t		 notes;		/* kept, with something dropped */
	size_t		 dependents;	/* lost with a rejected record */
	char		 first[256];	/* the first counted reject's line */
	/* Told of each key whose copies roster_seal_entities rejects
	 * (what "person" or "group", the first copy's line); 0 or -1. */
	int		(*dup)(void *arg, const char *what, const char *key,
			    uint32_t line);
	void		*duparg;
};

/* Append one reject line and count it.  Returns 0, or -1 on I/O error. */
int	 rejects_add(struct rejects *, const char *file, unsigned long line,
	    const char *field, const char *fmt, ...) PRINTF_LIKE(5, 6);
/* A record kept by a reading rule, with what was dropped: the line
 * "file:line: field: note: reason", counted in notes.  0 or -1. */
int	 rejects_note(struct rejects *, const char *file, unsigned long line,
	    const char *field, const char *fmt, ...) PRINTF_LIKE(5, 6);
/* A record lost because one it depends on was rejected: "file:line:
 * field: depends on rejected ...", counted in dependents.  0 or -1. */
int	 rejects_dependent(struct rejects *, const char *file,
	    unsigned long line, const char *field, const char *fmt, ...)
	    PRINTF_LIKE(5, 6);

/* s[0..len) made safe to quote in a reject line (controls as '?', cut
 * at a character boundary to fit bufsz with "..."); returns buf. */
const char *rejects_quote(const char *s, size_t len, char *buf,
	    size_t bufsz);
/*
 * Remove from the sealed roster r the persons with pdrop[i] and the
 * groups with gdrop[i] set (either may be NULL), each already rejected
 * by the caller; then the groups below a removed group and the
 * memberships of removed records, both as dependents in rj ("depends on
 * rejected ...": a group at its line of groupfile, the memberships one
 * line per rejected record, naming memberfile and the record's file and
 * line).  Indexes are remapped.  0 or -1.
 */
int	 roster_drop(struct roster *r, const uint8_t *pdrop,
	    const uint8_t *gdrop, struct rejects *rj, const char *personfile,
	    const char *groupfile, const char *memberfile);
/* An empty roster. */
void	 roster_init(struct roster *);
/* Free everything a roster holds; it is empty afterwards. */
void	 roster_free(struct roster *);
/* Copy *p (strings into the arena) and append it.  -1 on no memory. */
int	 roster_add_person(struct roster *, const struct person *);
/* Move src's persons, with their strings, after dst's, their lines
 * moved by `lines` (src keeps no persons or strings).  0, or -1 (error
 * set, both unchanged) when memory runs out. */
int	 roster_append_persons(struct roster *dst, struct roster *src,
	    uint32_t lines);
/* Move src's memberships after dst's (src keeps none; its array is
 * dst's spare if dst has none).  0, or -1 (error set, both unchanged)
 * when memory runs out. */
int	 roster_append_members(struct roster *dst, struct roster *src);
/* Copy *g and append it.  -1 on no memory. */
int	 roster_add_group(struct roster *, const struct group *);
/*
 * Sort persons and groups by key.  Every record whose key occurs more
 * than once is rejected (all copies: never guessed), naming file and
 * both lines.  Then groups on a parent cycle are rejected (field
 * "parent"); a group whose parent is not a known group is kept as a
 * root, with a note (rejects_note, field "parent").  Strings are
 * stored as the XML output carries them (controls but TAB and LF
 * dropped, CR LF as LF) and consumers read them (trimmed of white
 * space; roster_add_*).  Returns 0, or -1 on I/O error.
 */
int	 roster_seal_entities(struct roster *, struct rejects *,
	    const char *personfile, const char *groupfile);
/* Index of the person/group with this key, or -1.  Needs sealed arrays. */
long	 roster_find_person(const struct roster *, const char *key);
long	 roster_find_group(const struct roster *, const char *key);
/*
 * formats/roster.c: the source lines of records by position, kept as
 * runs (a position and its line, the positions after it on the lines
 * after it): a file of one record a line costs one run, not four bytes
 * a record.
 */
struct linerun {
	uint32_t	 pos, line;
};
struct linemap {
	struct linerun	*v;
	size_t		 n, cap;
	uint32_t	 next;		/* the position added next */
};
/* Record position lines->next (then next moves on) as on line.
 * 0, or -1 (error set) on no memory. */
int	 linemap_add(struct linemap *lines, uint32_t line);
/* Append map b, its positions moved by a's count and its lines by
 * `by`.  0, or -1 (error set) on no memory. */
int	 linemap_append(struct linemap *a, const struct linemap *b,
	    uint32_t by);
/* The line of position pos (< lines->next).  Never fails. */
uint32_t linemap_line(const struct linemap *lines, uint32_t pos);
/* Free what the map holds; it is empty afterwards.  Never fails. */
void	 linemap_free(struct linemap *lines);

/* Append a membership (indexes already resolved).  -1 on no memory. */
int	 roster_add_member(struct roster *, const struct membership *);
/*
 * Sort memberships by (group, person, role).  The copies of one
 * person in one group in one role (rows of several terms, a role given
 * twice) merge into one, active when any copy is, from the earliest
 * begin to the latest end (an open begin or end on any copy leaves
 * that side open).  With lines (the CSV reader) each extra copy is
 * also noted in the rejects file (counted in notes, not rejects),
 * naming the first copy's line.  Returns 0 or -1.
 */
int	 roster_seal_members(struct roster *, struct rejects *,
	    const char *file, const struct linemap *lines);

/* A date YYYY-MM-DD in s[0..len) as a membership's day number, days
 * since 1970-01-01: 1..65535 (1970-01-02 to 2149-06-06), or 0 when s
 * is no such date (a day that does not exist, or out of that range). */
unsigned day_parse(const char *s, size_t len);
/* Day number d (1..65535) as YYYY-MM-DD in out; returns out. */
const char *day_format(unsigned d, char out[11]);

/* IMS roletype: name or code ("01", "1", "learner", "teacher", ...) to
 * 1..8, or 0 if unknown. */
int	 role_parse(const char *);
/* The DTD's spelling of an institutionroletype (Student, Faculty,
 * Staff, ...) matched in any case, or NULL if s is none. */
const char *institution_role_parse(const char *s);
/* "Learner", "Instructor", ... for 1..8. */
const char *role_name(int);
/* Parse a status value: 1/0, true/false, yes/no, y/n, active/inactive
 * (any case).  Returns 1, 0, or -1 if not a status. */
int	 status_parse(const char *);
/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates). */
int	 utf8_valid(const char *s, size_t len);
/* NULL if s[0..len) is UTF-8, else "invalid UTF-8 (it looks like
 * Windows-1252 ...)" or "... ISO-8859-1 ...", the likely encoding. */
const char *utf8_fault(const char *s, size_t len);

/* ------------------------------------------------------------------ */
/* agent/config.c: the YAML config.                                    */

enum source_format { SOURCE_CSV, SOURCE_ONEROSTER, SOURCE_IMS };
enum output_mode { MODE_FULL, MODE_DELTA };
enum compress { COMPRESS_NONE, COMPRESS_GZIP };
enum first_run { FIRST_RUN_BLOCK, FIRST_RUN_ALLOW };
enum starttls { STARTTLS_REQUIRED, STARTTLS_TRY, STARTTLS_OFF };
/* output.profile: the consumer the file is written for (sisfeed.yaml.5
 * states each contract).  Only the writer and the config checks know a
 * consumer by name. */
enum output_profile { PROFILE_GENERIC, PROFILE_MOODLE, PROFILE_ITSLEARNING };

/* Model fields a CSV column can map to. */
enum person_field { PF_ID, PF_USERID, PF_GIVEN, PF_FAMILY, PF_EMAIL,
	PF_STATUS, PF_ROLE, PF_NIN, NPF };
enum group_field { GF_ID, GF_TYPE, GF_SHORT, GF_LONG, GF_PARENT, GF_TERM,
	NGF };
enum member_field { MF_GROUP, MF_PERSON, MF_ROLE, MF_STATUS, NMF };

/* Run statuses, also the mail's "on:" bits (1 << status). */
enum run_status { RUN_COMPLETED, RUN_BLOCKED, RUN_FAILED, NSTATUS };

struct threshold {
	double		 percent;	/* < 0: none */
	long		 cap;		/* < 0: none */
};

struct rolemap {
	char		*name;		/* as in the export, compared caseless */
	int		 role;		/* 1..8 */
};

struct strlist {
	char		**v;
	size_t		  n;
};

/*
 * The safety nets beyond the nine cells: status flips as cells of their
 * own (an unset deactivation cell takes the delete threshold of its
 * type, an unset reactivation cell the insert threshold).
 */
/* Limits for one org (or, org NULL, for every org). */
struct org_limits {
	char		*org;		/* the org's group id; NULL: all */
	struct threshold t[NTYPES][NKINDS];
	long		 min_base;
};

/* A limit on a kind of change summed over the last days. */
struct window_limit {
	int		 type, kind, days;
	struct threshold th;
};

/* Kinds of change a pause holds out of the file. */
#define HOLD_DELETES		1u
#define HOLD_DEACTIVATIONS	2u

/* A window of the calendar of safety.pause: [from, to). */
struct pause_window {
	time_t		 from, to;
	unsigned	 hold;		/* HOLD_* */
};

struct safety_nets {
	struct threshold flip[NTYPES][NFLIPS];
	struct pause_window *pause;	/* safety.pause */
	size_t	 npause;
	struct window_limit *windows;	/* safety.TYPE.KIND_Nd */
	size_t	 nwindows;
	int	 orgs_enabled;		/* a safety.orgs section exists */
	char	*org_type;		/* groups of this type are orgs */
	struct org_limits org_all;	/* every org */
	struct org_limits *org_over;	/* per org id, unset cells from all */
	size_t	 norg_over;
	long	 approval_ttl;		/* seconds an approval stands; 0 ever */
	int	 approval_reason;	/* 1: --approve needs --reason */
};

struct config {
	char		*path;		/* the file read */
	char		*site;
	char		*state_dir;
	int		 history;	/* earlier snapshots kept */

	struct {
		enum source_format format;
		char	*persons, *groups, *memberships;  /* csv files */
		char	*dir;		/* oneroster: directory */
		char	*file;		/* ims: one file */
		char	*pcol[NPF];	/* csv header per field, NULL unmapped */
		char	*gcol[NGF];
		char	*mcol[NMF];
		struct rolemap *roles;	/* extra role names */
		size_t	 nroles;
		char	 delimiter;	/* default ',' */
		char	*encoding;	/* csv, oneroster: NULL is UTF-8 */
		uint64_t zip_max;	/* oneroster .zip: bytes a member
					 * may inflate to */
		/* issue 10 */
		char	*useridtype;	/* ims: <userid useridtype> to take;
					 * NULL: username, else untyped */
	} source;

	struct {
		char	*source;	/* <sourcedid><source> */
		char	*datasource;	/* <properties><datasource>; default site */
		char	*target;	/* optional <target> */
		enum output_mode mode;
		enum compress compress;
		char	*name;		/* strftime pattern */
		int	 threads;	/* gzip threads 1..64; 0 automatic */
		/* consumer profiles */
		enum output_profile profile;	/* default generic */
		/* moodle: each file repeats the changes of the last
		 * `window` delivered nights and replaces the one before at
		 * a fixed name (set by the config checks) */
		int	 cumulative;
		int	 window;	/* 0..366, default 7 */
		char	*moodle_auth;	/* output.moodle.auth: manual */
	} output;

	struct {
		struct threshold t[NTYPES][NOPS];
		long	 min_base;
		enum first_run first_run;
		double	 max_rejects;	/* percent */
		double	 max_shrink;	/* percent a file may shrink by;
					 * -1 off */
	} safety;

	/* Safety nets beyond the nine cells (sisfeed.yaml(5)). */
	struct safety_nets nets;

	struct {
		char	*dir;		/* delivery.dir, or NULL */
		int	 sftp;		/* 1 if delivery.sftp is set */
		struct {
			char	*host;
			int	 port;
			char	*user;
			char	*identity;
			char	*passphrase_file;
			char	*password_file;
			char	*known_hosts;
			char	*remote_dir;
			int	 retries;
			int	 timeout;	/* seconds */
		} s;
	} delivery;

	struct {
		int	 enabled;	/* a mail: section exists */
		char	*smtp;		/* smtp://host:port or smtps:// */
		char	*sendmail;	/* program path, instead of smtp */
		enum starttls starttls;
		char	*user;
		char	*password_file;	/* or SISFEED_SMTP_PASSWORD */
		char	*cafile;
		char	*from;
		struct strlist to;	/* every run */
		struct strlist to_status[NSTATUS];  /* extra, per status */
		unsigned on;		/* bit (1 << run_status) */
		int	 samples;	/* person samples in mail; 0 none */
		int	 timeout;
	} mail;

	/* Operations: the export's age, retention, monitoring. */
	long		 source_max_age;	/* source.max_age, s; 0 none */
	int		 delivery_mode;	/* delivery.mode of delivered files;
					 * 0: 0640 in a directory, 0600
					 * over SFTP */
	struct {
		int	 keep;		/* runs kept in runs.log, runs/,
					 * rejects/ */
	} state;
	struct {
		long	 max_age;	/* s since the last success before
					 * status is CRITICAL; 0 never */
		char	*metrics;	/* Prometheus textfile, or NULL */
		char	*heartbeat;	/* URL fetched after each success */
	} monitor;
};

/*
 * Read and check the config file.  Unknown keys, wrong types and bad
 * values are errors naming "file:line: ...".  Returns a config to free
 * with config_free, or NULL with the error set.
 */
struct config *config_load(const char *path);
/* Free a config (NULL is fine). */
void	 config_free(struct config *);
/* Parse "2%", "500" into a threshold half; used by config and tests.
 * Returns 0 or -1. */
int	 threshold_parse(const char *, struct threshold *);

/* ------------------------------------------------------------------ */
/* formats/instream.c: the bytes of one export file for the CSV reader: */
/* a plain file or a member of a .zip bundle, converted to UTF-8 from   */
/* source.encoding on the way (iconv).                                  */

struct zipbundle;
struct instream;
/* source.zip_max's default: 4 GiB. */
#define SOURCE_ZIP_MAX	((uint64_t)4096 << 20)
/* Open the .zip at path (libzip); a member may inflate to at most max
 * bytes.  NULL with the error set (not a zip, damaged). */
struct zipbundle *zipbundle_open(const char *path, uint64_t max);
void	 zipbundle_close(struct zipbundle *);
/* The member name (at the top of the zip, or under the one folder all
 * members are in), named "ZIP:MEMBER" in errors.  NULL with *absent
 * set when there is none, or NULL with the error set: it states more
 * than max bytes, is encrypted or damaged. */
struct instream *instream_open_zip(struct zipbundle *, const char *name,
	    int *absent);
/* A stream over the open file fd (owned from here, also on failure),
 * named name in errors.  NULL with the error set. */
struct instream *instream_open_fd(int fd, const char *name);
/* 1 if enc is set and is not UTF-8 (text in it needs converting). */
int	 instream_converts(const char *enc);
/* 1 if iconv converts enc to UTF-8 (or enc needs no converting). */
int	 instream_encoding_known(const char *enc);
/* Convert what the stream yields from enc to UTF-8 (no-op for UTF-8).
 * Call before the first read.  0 or -1 (error set). */
int	 instream_set_encoding(struct instream *, const char *enc);
/* Up to n (>= 8) bytes: the count, 0 at the end, or -1 with the error
 * set: "NAME:LINE: byte 0x81 is not windows-1252 ...", a read error, a
 * zip member inflating past its stated size. */
ssize_t	 instream_read(struct instream *, void *buf, size_t n);
void	 instream_close(struct instream *);

/* ------------------------------------------------------------------ */
/* formats/csv.c: generic CSV with a column mapping.                   */

/*
 * A streaming RFC 4180 reader: quoted fields, "" escapes, embedded
 * commas and newlines, CRLF or LF, a UTF-8 BOM skipped.
 */
struct csv_reader;
/* Open path for reading.  NULL with the error set. */
struct csv_reader *csv_open(const char *path, char delimiter);
/* Read from in (owned from here, also on failure), named name in
 * errors.  NULL with the error set. */
struct csv_reader *csv_open_stream(struct instream *in, const char *name,
	    char delimiter);
/* Convert what a reader from csv_open reads from enc to UTF-8 (NULL or
 * UTF-8: nothing to do).  Before the first record.  0 or -1. */
int	 csv_set_encoding(struct csv_reader *, const char *enc);
/*
 * Read the next record.  Returns the number of fields (>= 1), 0 at end
 * of file, or -1 on a malformed record or I/O error (error names
 * file:line).  Fields stay valid until the next call.
 * Blank lines are skipped.  After a malformed record (a quote inside an
 * unquoted field, text after a closing quote, a quote still open at end
 * of file) the reader has skipped to the end of the line where the
 * fault was found and the next call goes on; after an I/O error or out
 * of memory csv_fatal() is 1 and every later call fails.
 */
int	 csv_next(struct csv_reader *, char ***fields, size_t **lens);
/*
 * The header record: csv_next, then a malformed header or a field that
 * csv_field_fault refuses is an error.  Remembers the field count: a
 * file whose last record is short fails at its end (cut short), as
 * does a file whose last record has no line end.  Records over 1 MiB
 * are malformed.
 */
int	 csv_next_header(struct csv_reader *, char ***fields, size_t **lens);
/* Why a value cannot be stored (invalid UTF-8, NUL, a byte order mark
 * past the file's start), or NULL. */
const char *csv_field_fault(const char *s, size_t len);
/* The line where the last record returned started. */
unsigned long csv_line(const struct csv_reader *);
/* 1 if the reader failed for good, 0 if a -1 was a malformed record. */
int	 csv_fatal(const struct csv_reader *);
void	 csv_close(struct csv_reader *);
/* 1 if a record of n fields (lengths l) against a header of nhdr is
 * nhdr fields and trailing empty ones (ignored, a reading rule). */
int	 csv_extra_empty(const size_t *l, size_t n, size_t nhdr);
/* Trim spaces, tabs, CR and LF around field i of a record (in place),
 * as the model stores values. */
void	 csv_trim_field(char **f, size_t *l, size_t i);
/* 1 if header cell h names column want: any case, blanks ignored. */
int	 csv_header_match(const char *h, const char *want);
/* What a header of n cells read with delim looks like, for a missing
 * column's error: "; the header has: a, b, c" and, when one cell holds
 * another likely separator, "(';'-separated? set source.delimiter)".
 * Written into buf; returns buf. */
const char *csv_header_hint(char *const *h, size_t n, char delim,
	    char *buf, size_t len);

/*
 * Read the three CSV files of cfg->source into r, rejecting bad records
 * into rj.  Fails (-1) on a missing, empty or header-only file or a
 * mapped column missing from a header.  Leaves r sealed.
 */
int	 csv_read_roster(const struct config *, struct roster *r,
	    struct rejects *rj);
/*
 * SOURCE_DATE_EPOCH: 1 and *t set if it is set, 0 if not, -1 (error
 * set) if it is not a decimal number in range.  Shared with oneroster.c.
 */
int	 csv_source_date_epoch(time_t *t);

/*
 * A hash index of keys to array positions (persons or groups), for the
 * ten million lookups of a large memberships file (csv.c; OneRoster's
 * enrollments and IMS memberships use it too).  A slot is half a cache
 * line and holds short keys itself, so a lookup touches one line and
 * not the record and its string too.  Build it over sealed arrays: it
 * points into them.
 */
#define KEY_INLINE	23
struct keyindex_slot {
	uint32_t		 pos;	/* position + 1, 0 empty */
	uint32_t		 fp;	/* the hash's high bits */
	char			 key[KEY_INLINE + 1];	/* "" if longer */
};
struct keyindex {
	struct keyindex_slot	*slot;
	size_t			 mask;
	const char		*base;	/* &array[0].id */
	size_t			 stride;
};
uint64_t keyindex_hash(const char *s, size_t len);
int	 keyindex_build(struct keyindex *, const void *base, size_t stride,
	    size_t n);
void	 keyindex_prefetch(const struct keyindex *, uint64_t hv);
long	 keyindex_find(const struct keyindex *, const char *key, size_t len,
	    uint64_t hv);
void	 keyindex_free(struct keyindex *);

/* formats/oneroster.c: OneRoster 1.0/1.1/1.2 CSV (users, orgs, classes,
 * enrollments; 1.2 roles) from cfg->source.dir.  Same contract as
 * csv_read_roster. */
int	 oneroster_read_roster(const struct config *, struct roster *,
	    struct rejects *);

/* ------------------------------------------------------------------ */
/* formats/ims_read.c, formats/ims_write.c: IMS Enterprise 1.1 XML.    */

/*
 * Read an IMS Enterprise file (plain or gzip) into r, streaming.  Bad
 * records are rejected into rj (may be NULL: then they are errors).
 * Returns 0, or -1 when the file is not well-formed or unreadable.
 */
int	 ims_read(const char *path, struct roster *r, struct rejects *rj);
/*
 * formats/ims_snap.c: read a full file in the exact shape ims_write_full
 * writes for the generic and moodle profiles (the snapshot) into the
 * empty roster r, without a general XML parser.  0 with r sealed as
 * ims_read(path, r, NULL) gives it; 1 if the file is not in that shape
 * (r emptied: read it with ims_read); -1 on an error (r to be freed).
 */
int	 ims_read_snapshot(const char *path, struct roster *r);
/*
 * Read cfg->source.file as the export, the way consumers read it: the
 * <userid> by cfg->source.useridtype (NULL: useridtype "username", else
 * the first without a type; never a typed one such as personNIN), and
 * r->datetime SOURCE_DATE_EPOCH when set.  Same contract as ims_read.
 */
int	 ims_read_source(const struct config *, struct roster *r,
	    struct rejects *rj);

/* formats/ims_dtd.c (generated by make dtd): the IMS Enterprise 1.1
 * DTD, so that validate needs no file at run time. */
extern const char ims_dtd[];
extern const size_t ims_dtd_len;
/* formats/pifu_xsd.c (generated by make dtd): PIFU-IMS_SAS.xsd. */
extern const char pifu_xsd[];
extern const size_t pifu_xsd_len;
/*
 * formats/ims_valid.c: check the IMS file at path against the built-in
 * DTD, or a PIFU-IMS file (root in PIFU_NS) against the built-in
 * PIFU-IMS XSD (*what "DTD" or "XSD"); violations counted in *nerr, the
 * first max printed to out (may be NULL) as "file:line: DTD: message".
 * 0 when checked (valid or not), -1 when unreadable or not well-formed.
 */
int	 ims_validate_dtd(const char *path, FILE *out, size_t max,
	    size_t *nerr, const char **what);

/* What one written record is in delta mode. */
enum recstatus { REC_NONE = 0, REC_ADD = 1, REC_UPDATE = 2,
	REC_DELETE = 3 };

struct ims_options {
	const char	*source;	/* <sourcedid><source> */
	const char	*datasource;
	const char	*target;	/* NULL: no <target> */
	int		 gzip;
	int		 delta;		/* writes <type>delta</type> */
	int		 threads;	/* gzip: compressing threads; 1 on
					 * this thread, 0 online CPUs (<= 8) */
	enum output_profile profile;	/* the consumer written for */
	/* itslearning (PIFU-IMS) */
	int		 nin;		/* personNIN userids: the config maps
					 * a national identity number */
};

struct changeset;

/*
 * Write r in full (every record, no recstatus) to path, which is
 * created 0600 and fsync'd.  Deterministic.  Returns 0 or -1.
 */
int	 ims_write_full(const char *path, const struct roster *r,
	    const struct ims_options *);
/*
 * Write only the changes of cs (new roster nr, old roster or) with
 * recstatus 1/2/3 on person, group and role.  A person delete carries
 * the old <userid>.  Returns 0 or -1.
 */
int	 ims_write_delta(const char *path, const struct roster *nr,
	    const struct roster *or, const struct changeset *cs,
	    const struct ims_options *);

/*
 * The moodle profile.  Write the file for tonight's roster r from the
 * journal text[0..len) (the window's earlier nights and tonight's, see
 * window_night): for every key it names, records that set Moodle to
 * what r holds whatever Moodle holds now.  auth: the authentication
 * plugin of active persons (inactive ones get nologin).  Created 0600,
 * fsync'd, removed on failure.  0 or -1.
 */
int	 ims_write_moodle(const char *path, const struct roster *r,
	    const char *text, size_t len, const struct ims_options *,
	    const char *auth);
/*
 * Take out of the sealed roster r the records opt's profile cannot
 * deliver (for moodle: Moodle's column sizes, an empty or shared login,
 * a shared course short name), each into rj with the reason naming
 * pfile or gfile, and the groups below them and the memberships that
 * name them (dependents, see roster_drop).  *altered: the
 * records whose values the receiver stores differently (each named in
 * a warning).  For itslearning see pifu_fit.  A national identity
 * number is cleared unless the profile is itslearning and opt->nin.
 * The generic profile takes everything else.  0 or -1.
 */
int	 ims_screen(const struct ims_options *opt, struct roster *r,
	    struct rejects *rj, const char *pfile, const char *gfile,
	    const char *mfile, size_t *altered);

/* ------------------------------------------------------------------ */
/* formats/window.c: the journal of the nights' touched keys (moodle). */

struct sbuf;
/* Append to sb the lines of the keys cs touched between the old roster
 * or and the new one nr.  Errors show in sb->err. */
void	 window_keys(struct sbuf *, const struct roster *or,
	    const struct roster *nr, const struct changeset *cs);
/* Keep one line per key in the night block sb->p[from..len) (flag 1
 * if any of its lines has it), sorted: a retried run replaces, not adds
 * to, the tried night.  No memory shows in sb->err. */
void	 window_merge(struct sbuf *sb, size_t from);
/* Where the last keep committed nights of text[0..len) start (len if
 * keep is 0). */
size_t	 window_tail(const char *text, size_t len, int keep);
/* Split a journal: committed nights to nights, the key lines of tried
 * nights (delivered, maybe, never committed) to tried; *tried_all if
 * one of those touched everything, *any_tried if there was one. */
void	 window_split(const char *text, size_t len, struct sbuf *nights,
	    struct sbuf *tried, int *tried_all, int *any_tried);
/* Append the journal at path to sb (nothing if missing).  0 or -1. */
int	 window_load(const char *path, struct sbuf *sb);
/* Undo the key escapes of s[0..len) in place, NUL-terminated; returns
 * the new length. */
size_t	 window_unescape(char *s, size_t len);

/* ------------------------------------------------------------------ */
/* formats/pifu.c: PIFU-IMS 1.3, the Norwegian national profile of IMS  */
/* Enterprise 1.1 that itslearning reads (ims/PIFU-IMS_SAS.xsd).        */

#define PIFU_NS		"http://pifu.no/xsd/pifu-ims_sas/pifu-ims_sas-v1"
#define PIFU_LANG	"no"		/* <properties lang>, ISO 639-1 */

/*
 * The grouptype of a PIFU typevalue (exact spelling): its scheme
 * ("pifu-ims-go-org" or "pifu-ims-go-grp") and level ("1".."16").
 * Returns 0, or -1 if type is not a PIFU typevalue.
 */
int	 pifu_grouptype(const char *type, const char **scheme,
	    const char **level);
/*
 * The PIFU typevalue for a group type of the export: a PIFU typevalue
 * in any case, or a common English name (district, school, homeroom,
 * class, course, section, subject, grade, ...).  NULL if none.
 */
const char *pifu_typevalue(const char *type);
/* 1 if s is an <email> PIFU-IMS accepts (.+@.+(\..+)+, <= 256). */
int	 pifu_email_ok(const char *s);
/* 1 if s is an <adminperiod> PIFU-IMS accepts: 2026, H2026,
 * 2026/2027, H2026/V2027. */
int	 pifu_adminperiod_ok(const char *s);
/* The number of characters (UTF-8 code points) in s. */
size_t	 utf8_chars(const char *s);
/*
 * ims_screen for itslearning: the roster as PIFU-IMS carries it, so
 * that the snapshot read back equals it.  No institution role; group
 * types as PIFU typevalues; no org; a term, a timeframe date or an
 * email PIFU refuses is left out (a note in rj); a person or group with
 * a value over PIFU's length limits, or a group whose type has no PIFU
 * typevalue, is rejected (its children and memberships as dependents).
 * Returns 0 or -1.
 */
int	 pifu_fit(struct roster *r, struct rejects *rj,
	    const char *personfile, const char *groupfile,
	    const char *memberfile);

/* ------------------------------------------------------------------ */
/* formats/rindex.c: the snapshot's compact companion (a cache).       */

/*
 * Write the sealed roster r as the index of the snapshot whose identity
 * is digest (snapshot_digest), atomically, mode 0600; not fsync'd, as a
 * torn index fails its own checks.  0 or -1.
 */
int	 rindex_write(const char *path, const struct roster *r,
	    const unsigned char digest[32]);
/*
 * rindex_write in two steps, so that the payload can be written while
 * the snapshot it will belong to is still being made.  rindex_prepare
 * writes the sealed roster r (only read: another thread may read it
 * too) to path.tmp with a placeholder header: a pending index, or NULL
 * (error set, no file left).  rindex_finish gives it the snapshot's
 * identity and renames it to path: 0 or -1 (error set, no file left).
 * rindex_discard drops it (NULL is fine).  Both free the pending index.
 */
struct rindex_pending;
struct rindex_pending *rindex_prepare(const char *path,
	    const struct roster *r);
int	 rindex_finish(struct rindex_pending *, const unsigned char digest[32]);
void	 rindex_discard(struct rindex_pending *);
/*
 * Load the index into the empty roster r if it belongs to the snapshot
 * with this identity and is intact (size, CRC-32, offsets).  Returns 0
 * when loaded, 1 when missing, stale or damaged (r left empty), -1 on
 * an error such as no memory.
 */
int	 rindex_read(const char *path, struct roster *r,
	    const unsigned char digest[32]);

/* ------------------------------------------------------------------ */
/* filters/diff.c: the change set by sync key.                         */

struct change {
	uint32_t	 old;		/* index in the old roster */
	uint32_t	 new;		/* index in the new roster */
	uint8_t		 op;		/* enum sf_op */
	uint8_t		 flip;		/* update: 0, or 1 + enum sf_flip */
};

struct changeset {
	struct change	*c[NTYPES];
	size_t		 n[NTYPES];
	size_t		 count[NTYPES][NOPS];
	size_t		 deactivated;	/* persons active -> inactive */
	size_t		 reactivated;	/* persons inactive -> active */
	size_t		 flips[NTYPES][NFLIPS];	/* deactivations and
					 * reactivations per type (persons and
					 * memberships; groups have no status) */
	size_t		 base[NTYPES];	/* old roster's counts */
	unsigned char	 digest[32];	/* of every change, in order */
};

/*
 * Compare new roster nr with old roster or (both sealed) by key.
 * Returns 0 and fills cs, or -1 on no memory.
 */
int	 diff_compute(const struct roster *or, const struct roster *nr,
	    struct changeset *cs);
void	 changeset_free(struct changeset *);
/* 1 if two records of a type differ in any field. */
int	 person_differs(const struct person *, const struct person *);
int	 group_differs(const struct group *, const struct group *);

/* ------------------------------------------------------------------ */
/* filters/safety.c: thresholds and the verdict.                       */

/*
 * One safety check beyond the nine cells: a flip cell of the site, a
 * cell of one org, or a cell summed over a window of days.
 */
enum check_scope { SCOPE_SITE, SCOPE_ORG, SCOPE_WINDOW };
#define CHECK_SAMPLES	10

struct check {
	enum check_scope scope;
	char		 org[64];	/* SCOPE_ORG: the org's id */
	int		 days;		/* SCOPE_WINDOW: the window */
	int		 type;		/* enum sf_type */
	int		 kind;		/* enum sf_op or KIND_* */
	size_t		 count;		/* changes counted */
	size_t		 base;		/* records the cell is taken of */
	struct threshold th;
	double		 percent;	/* of base; -1 if no base */
	int		 tripped;
	/* tonight's changes in the cell (indexes into cs->c[type]), and
	 * their descriptions filled in by the agent for the report */
	uint32_t	 sample[CHECK_SAMPLES];
	size_t		 nsample;
	char		*sample_text[CHECK_SAMPLES];
};

/*
 * The files of one export and their sizes in bytes (the three CSV
 * files, the OneRoster tables, the IMS file), measured as the run reads
 * them and kept in STATE/export.sizes by the run that delivers.
 */
#define EXPORT_FILES	4
#define SHRINK_MIN_BYTES 16384	/* smaller: a share of this instead */
struct export_size {
	char		 file[1024];
	long long	 bytes;
};

/* One file's size tonight against the last delivered run's. */
struct shrink_check {
	struct export_size now;
	long long	 was;		/* bytes the last delivery read */
	double		 percent;	/* shrink, of the larger of was and
					 * SHRINK_MIN_BYTES; < 0 grew */
	int		 tripped;
};

struct verdict {
	int		 blocked;
	int		 first_run;		/* no snapshot: initial load */
	int		 tripped[NTYPES][NOPS];
	double		 percent[NTYPES][NOPS];	/* of the base; -1 if none */
	char		 approval_id[17];	/* 16 hex */
	char		 reason[512];
	struct check	*checks;		/* verdict_free frees */
	size_t		 nchecks, capchecks;
	struct shrink_check shrink[EXPORT_FILES];  /* safety_judge_sizes */
	size_t		 nshrink;
};

/*
 * Judge cs against cfg->safety and the flip cells of cfg->nets.
 * snapshot_digest identifies the old snapshot (zeros when there is
 * none).  Fills v (free with verdict_free); 0, or -1 on no memory.
 */
int	 safety_evaluate(const struct config *, const struct changeset *,
	    int first_run, const unsigned char snapshot_digest[32],
	    struct verdict *v);
/*
 * Judge each file of tonight's export (now, n of them) against its
 * size when the last delivered run read it (was, nwas; matched by
 * path): one that shrank by more than cfg->safety.max_shrink percent of
 * that size (of SHRINK_MIN_BYTES when smaller) trips, blocks v and is
 * named in its reason with both sizes.  A file without an earlier size
 * is not judged.  The results go to v->shrink.
 */
void	 safety_judge_sizes(const struct config *,
	    const struct export_size *was, size_t nwas,
	    const struct export_size *now, size_t n, struct verdict *v);
/*
 * filters/orgs.c: judge cs (snapshot or, tonight nr) for each org
 * against cfg->nets (nothing unless safety.orgs is set): a check per
 * org and cell that counts a change.  0, or -1 on no memory.
 */
int	 safety_evaluate_orgs(const struct config *, const struct roster *or,
	    const struct roster *nr, const struct changeset *,
	    struct verdict *);
/* "persons", "groups", "memberships"; "inserts", "updates", "deletes" */
const char *type_name(int);
const char *op_name(int);
/* op_name, and "deactivations", "reactivations" for the KIND_* flips. */
const char *kind_name(int);
/* Free the checks of a verdict (and their sample texts). */
void	 verdict_free(struct verdict *);
/*
 * Add a check to v: judged against th with base (min_base applied),
 * tripped when count is over it, its reason appended.  Returns the
 * check, or NULL (error set) when memory runs out.
 */
/*
 * The keys of what tripped in v ("persons.deletes", "org:S1:persons.
 * deletes", "7d:persons.deletes"), space-separated, into buf.  -1 if
 * they do not fit (buf then holds those that did).
 */
int	 verdict_scope(const struct verdict *, char *buf, size_t len);
/* 1 if every key of what tripped in v is in scope ("*": everything). */
int	 verdict_covered(const struct verdict *, const char *scope);
struct check *verdict_add_check(struct verdict *, enum check_scope,
	    const char *org, int days, int type, int kind, size_t count,
	    size_t base, long min_base, const struct threshold *th);

/* ------------------------------------------------------------------ */
/* agent/snapshot.c: the state directory.                              */

/*
 * Create the state directory (0700) and its subdirectories if needed,
 * and take the run lock.  Returns an open lock fd, -1 on error, or -2
 * when another run holds it (error names the holder's pid).
 */
int	 snapshot_lock(const char *state_dir);
void	 snapshot_unlock(int fd);
/* Path of the current snapshot in state_dir into buf; 1 if it exists,
 * 0 if not (first run). */
int	 snapshot_path(const char *state_dir, char *buf, size_t len);
/* The digest that identifies the snapshot (of its size and mtime to
 * the nanosecond: new with every commit, kept by a restore from backup),
 * or zeros if there is none.  0 or -1. */
int	 snapshot_digest(const char *state_dir, unsigned char out[32]);
/*
 * Make tmp (a complete, fsync'd file in state_dir) the new snapshot:
 * the old one moves to history (keeping `keep`), rename, fsync of the
 * directory.  Returns 0 or -1.
 */
int	 snapshot_commit(const char *state_dir, const char *tmp, int keep);
/* Keep the newest `keep` files of state_dir/sub (names sort by time);
 * remove the rest.  0 or -1. */
int	 snapshot_prune(const char *state_dir, const char *sub, int keep);
/*
 * Delivered but not yet committed: state_dir/delivered names the full
 * file tmp (in state_dir/out) of a run whose delivery succeeded, from
 * the moment the receiver holds it until snapshot_commit made it the
 * snapshot (snapshot_clear_delivered).  0 or -1.
 */
int	 snapshot_mark_delivered(const char *state_dir, const char *tmp);
void	 snapshot_clear_delivered(const char *state_dir);
/*
 * Roll a run that stopped between delivery and commit forward: the
 * receiver holds its file, so that file becomes the snapshot (the next
 * delta is computed from what the receiver has).  Returns 1 when rolled
 * forward, 0 when there was nothing to do (no mark, or its file gone),
 * -1 on error.
 */
int	 snapshot_roll_forward(const char *state_dir, int keep);
/* ------------------------------------------------------------------ */
/* agent/restore.c: a lost snapshot is never a first run.              */

/*
 * 1 and why filled when state_dir has no snapshot although earlier
 * runs delivered (history/, snapshot.idx, a completed run in runs.log)
 * and no initial load was asked for (STATE/initial); 0 otherwise; -1
 * on error.
 */
int	 state_lost(const char *state_dir, char *why, size_t len);
/* Remove STATE/initial after a commit.  Never fails. */
void	 state_initial_done(const char *state_dir);
/* The restore command: file (or the newest good snapshot of history/)
 * becomes the snapshot; initial: the next run is an initial load.
 * Returns an exit code. */
int	 run_restore(const struct config *, const char *file, int initial);

/* ------------------------------------------------------------------ */
/* lib/sbuf.c: a growing string; out of memory sets err, and later      */
/* appends do nothing until sbuf_done reports it.                       */

struct sbuf {
	char	*p;
	size_t	 len, cap;
	int	 err;
};
void	 sbuf_putn(struct sbuf *, const char *, size_t);
void	 sbuf_puts(struct sbuf *, const char *);
void	 sbuf_printf(struct sbuf *, const char *, ...) PRINTF_LIKE(2, 3);
/* The string (caller frees), or NULL with "WHAT: out of memory" set. */
char	*sbuf_done(struct sbuf *, const char *what);
/* Append s as one shell word (single-quoted unless plainly safe). */
void	 sbuf_shell_word(struct sbuf *, const char *s);

/* ------------------------------------------------------------------ */
/* agent/owner.c: the state directory's one owner.                     */

/*
 * Make this process the owner of cfg->state_dir before it touches
 * state: as that owner, or when the directory does not exist yet,
 * nothing to do; as root, drop to the owner (its groups, gid, uid) and
 * return 0; as anyone else, return -1 with an error that names the
 * owner and the sudo(8) line to use (argv: the command line given).
 */
int	 owner_become(const struct config *, int argc, char *argv[]);
/* "sudo -u OWNER ARGV..." (the state directory's owner, each word
 * shell-quoted), allocated; NULL when out of memory. */
char	*owner_sudo_line(const struct config *, int argc, char *argv[]);
/* The user who started this process (before owner_become dropped to
 * the owner), as a name or "uid N".  Never NULL. */
const char *owner_invoker(void);
/* The name of the state directory's owner (this process's user when it
 * does not exist yet) into buf.  Never fails. */
void	 owner_name(const struct config *, char *buf, size_t len);
/* This host's name into buf ("localhost" if unknown). */
void	 owner_host(char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* agent/monitor.c: the export's age, status, metrics, heartbeat.      */

#define MONITOR_SCHEMA	1	/* status --json "schema_version" */

struct run_report;

/* With source.max_age set: -1 (error set) when the export's oldest
 * file is older than that at time now; else 0. */
int	 monitor_export_fresh(const struct config *, time_t now);
/* The status command, as text or JSON (json != 0); as_owner (or NULL):
 * the sudo line to show when the state cannot be read.  Returns the
 * Nagios plugin code: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN. */
int	 monitor_status(const struct config *, int json,
	    const char *as_owner);
/* Write monitor.metrics, a Prometheus textfile (0640), if set.  0 or
 * -1. */
int	 monitor_write_metrics(const struct config *,
	    const struct run_report *);
/* Fetch monitor.heartbeat, if set (10 s at most).  0 or -1. */
int	 monitor_heartbeat(const struct config *);

/* ------------------------------------------------------------------ */
/* agent/report.c: the run's summary (mail text, JSON, status).        */

#define REPORT_SAMPLES 20

struct run_report {
	const struct config *cfg;
	enum run_status	 status;
	int		 nothing_to_do;	/* completed, no change */
	char		 run_id[32];	/* YYYYmmddTHHMMSSZ */
	time_t		 started, finished;
	char		 stage[32];	/* failed: the stage */
	char		 error[1024];	/* failed: the error */
	char		 reason[512];	/* blocked: why */
	char		 approval_id[17];
	char		 approved_by[128];	/* override/approve: who */
	struct changeset *cs;		/* may be NULL (failed early) */
	struct verdict	*v;		/* may be NULL */
	size_t		 count[NTYPES];	/* records in the new roster */
	size_t		 rejects;
	char		 rejects_path[512];
	char		 file_name[256];	/* delivered name */
	char		 remote_path[512];
	off_t		 file_size;
	size_t		 altered;	/* stored differently by the
					 * receiver (ims_screen) */
	double		 seconds[8];	/* per stage, see stage_name */
	/* samples of records each tripped threshold would touch */
	char		*samples[NTYPES][NOPS][REPORT_SAMPLES];
	size_t		 nsamples[NTYPES][NOPS];
	/* samples shown per row: 0 (the default) at most cfg->mail.samples
	 * (mail, JSON); < 0 every sample held (plan) */
	int		 max_samples;
	/* where and as whom to approve: the state directory's owner ("":
	 * unknown, no sudo line) and this host's name */
	char		 owner[64];
	char		 host[256];
	/* a pause: the kinds held, until when, and what was held */
	unsigned	 held_mask;
	time_t		 held_until;
	size_t		 held[NTYPES][NKINDS];
	char		*held_samples[REPORT_SAMPLES];
	/* the approval: why, when given, when it runs out (0: never) */
	char		 approval_reason[256];
	time_t		 approved_at, approval_expires;
};

/* Stage indexes for run_report.seconds. */
enum stage { ST_READ, ST_DIFF, ST_WRITE, ST_SAFETY, ST_DELIVER,
	ST_COMMIT, ST_MAIL, NSTAGES };
const char *stage_name(int);

/* The text summary (plain), as printed by plan and mailed.  Returns a
 * malloc'd string or NULL. */
char	*report_text(const struct run_report *);
/* The same as an HTML fragment.  malloc'd or NULL. */
char	*report_html(const struct run_report *);
/* The same as JSON.  malloc'd or NULL. */
char	*report_json(const struct run_report *);
/* The mail subject line.  malloc'd or NULL. */
char	*report_subject(const struct run_report *);
/* The exact approve command (with "sudo -u OWNER" unless the owner is
 * root or unknown).  malloc'd, or NULL (error set). */
char	*report_approve_command(const struct run_report *);
/* Append s as a JSON string (quoted, escaped; null for NULL). */
void	 report_json_str(struct sbuf *, const char *s);
/* Free the samples. */
void	 report_free(struct run_report *);
/* Write report_json to state_dir/runs/RUN_ID.json atomically, mode
 * 0600 (runs/ created 0700 if needed).  0 or -1. */
int	 report_write_json(const struct run_report *);

/* ------------------------------------------------------------------ */
/* agent/deliver.c, agent/sftp.c                                       */

/*
 * Deliver the file at local path under the name `name` by the
 * configured method (a directory or SFTP).  Fills remote (the path on
 * the receiving side).  Returns 0 only when the receiver confirmed the
 * whole file under its final name.
 */
int	 deliver_file(const struct config *, const char *path,
	    const char *name, char *remote, size_t remotelen);

/* Upload path to cfg->delivery.s.remote_dir/name over SFTP: NAME.part,
 * size check, rename.  Retries with backoff.  0 or -1. */
int	 sftp_upload(const struct config *, const char *path,
	    const char *name);
/* Parse a byte stream of SFTP v3 replies with the upload's parsers
 * (framing, VERSION, STATUS, HANDLE, ATTRS, EXTENDED_REPLY), for the
 * fuzzer and tests.  The number of replies, or -1 at a malformed one. */
int	 sftp_parse_replies(const unsigned char *, size_t);
/* Log in, check the host key and that remote_dir is writable; print a
 * line per check to fp.  0 if every check passed. */
int	 sftp_check(const struct config *, FILE *fp);

/* ------------------------------------------------------------------ */
/* agent/mail.c                                                        */

/*
 * Mail the report to its subscribers.  A mail that cannot be sent goes
 * to the spool in state_dir and a warning is logged; the run's outcome
 * never changes.  Returns 0 if sent or spooled, -1 if neither.
 */
int	 mail_report(const struct config *, const struct run_report *);
/* Send what the spool holds; sent messages leave it.  0 or -1. */
int	 mail_flush_spool(const struct config *);
/* Send a test message.  0 or -1. */
int	 mail_test(const struct config *);
/* The mail's HTML part for a report, as the whole document.  malloc'd
 * or NULL. */
char	*mail_html(const struct run_report *);

/* ------------------------------------------------------------------ */
/* filters/hold.c, agent/pause.c: a pause holds kinds of change out.   */

/*
 * Build into the empty roster dr what the receiver holds after tonight
 * when the kinds in mask are held: nr with the held changes of cs (or
 * to nr) undone, sealed; n counts what was held.  0 or -1.
 */
int	 hold_apply(const struct roster *or, const struct roster *nr,
	    const struct changeset *, unsigned mask, struct roster *dr,
	    size_t n[NTYPES][NKINDS]);
/* 1 if change c is held under mask. */
int	 hold_change(const struct change *, unsigned mask);
/* "YYYY-MM-DD" plus days as local midnight into *t.  0 or -1. */
int	 pause_date(const char *, int days, time_t *t);
/* "deletes,deactivations" into HOLD_* bits.  0 or -1. */
int	 pause_hold_parse(const char *, unsigned *mask);
/* "deletes and deactivations", "deletes", ... */
const char *pause_hold_name(unsigned mask);
/* The kinds held at now (calendar and STATE/pause); *until the end. */
unsigned pause_active(const struct config *, time_t now, time_t *until);
/* sisfeed pause --until DATE, sisfeed resume.  Exit codes. */
int	 pause_command(const struct config *, const char *until,
	    unsigned mask);
int	 pause_resume(const struct config *);

/* ------------------------------------------------------------------ */
/* agent/history.c: the delivered change sets, for windows of days,   */
/* and the sizes of the export the last delivery read.                */

/* Append the delivered cs (approval id id) at now to
 * STATE/delivered.log, fsync'd.  0 or -1. */
int	 history_append(const struct config *, const char *id,
	    const struct changeset *, time_t now);
/* Sum what was delivered after since (each id once, skip left out)
 * into sum; a torn line is skipped with a warning.  0 or -1. */
int	 history_sum(const struct config *, time_t since, const char *skip,
	    size_t sum[NTYPES][NKINDS]);
/* The sizes of the export's files now, into out (*n of them; a file
 * that is not there is left out).  0, or -1 when one cannot be
 * examined. */
int	 history_sizes_measure(const struct config *,
	    struct export_size out[EXPORT_FILES], size_t *n);
/* Keep the n sizes as STATE/export.sizes (atomic).  0 or -1. */
int	 history_sizes_save(const struct config *,
	    const struct export_size *, size_t n);
/* Read STATE/export.sizes into out (*n: 0 when there is none).  0, or
 * -1 when it cannot be read. */
int	 history_sizes_load(const struct config *,
	    struct export_size out[EXPORT_FILES], size_t *n);

/* ------------------------------------------------------------------ */
/* agent/approval.c: an approval of a blocked change set.              */

struct approval {
	char		 id[17];	/* the approval id */
	char		 by[128];	/* approval_identity */
	char		 reason[256];	/* --reason, or "" */
	time_t		 at;		/* when given; 0 unknown */
	char		 scope[4000];	/* verdict_scope when given; "*" all */
};

/* Who approves, into buf: "alice (sudo as root)", "bob (as root)",
 * "root". */
void	 approval_identity(char *buf, size_t len);
/* Write a as STATE/approved (atomic, 0600).  0 or -1. */
int	 approval_save(const struct config *, const struct approval *);
/* Read STATE/approved: 1 read, 0 none (or not an approval). */
int	 approval_load(const struct config *, struct approval *);
/* When a runs out under safety.approval_ttl; 0 never. */
time_t	 approval_expires(const struct config *, const struct approval *);

/* ------------------------------------------------------------------ */
/* agent/run.c: the commands.                                          */

struct run_options {
	int		 override;
	const char	*approve;	/* approval id or NULL */
	const char	*reason;	/* --reason TEXT or NULL */
	int		 plan;		/* compute and report, no delivery */
};

/* The nightly run (and plan, export).  Returns an exit code. */
int	 run_main(const struct config *, const struct run_options *);
/* The export command: a full IMS file at path ("-" or NULL: stdout).
 * Returns an exit code. */
int	 run_export(const struct config *, const char *path);
/* The check command.  Returns an exit code. */
int	 run_check(const struct config *, int mail);
/* validate [--profile NAME] FILE (profile NULL: none).  Returns an
 * exit code. */
int	 run_validate(const char *path, const char *profile);
/* diff OLD NEW.  Returns an exit code. */
int	 run_diff(const char *oldpath, const char *newpath);

#endif /* SISFEED_H */
