/*
 * receiver.h -- receiver models for the tests: importers that follow a
 * profile's documented receiver semantics (sisfeed.yaml.5, output.profile)
 * and keep their state between files, and a churning export to feed them
 * night after night through the real `sisfeed run`.
 *
 * A model never uses the code under test to read a file: it parses the
 * delivered XML itself (libxml2's tree API), so it checks the writer
 * rather than agreeing with it.
 */
#ifndef RECEIVER_H
#define RECEIVER_H

#include <stddef.h>
#include <time.h>

/* One record of each type, strings malloc'd ("" when absent). */
struct rx_person {
	char	*id, *userid, *given, *family, *email, *role, *nin;
	int	 active;
};

struct rx_group {
	char	*id, *type, *shortname, *longname, *parent, *term;
};

struct rx_member {
	char	*group, *person;
	int	 role;			/* 1..8 */
	int	 active;
};

/* What a receiver holds (or an export, to compare with). */
struct rx_state {
	struct rx_person *p;
	size_t		  np, capp;
	struct rx_group	 *g;
	size_t		  ng, capg;
	struct rx_member *m;
	size_t		  nm, capm;
};

/* The receiver semantics a model follows. */
enum rx_kind {
	RX_GENERIC,	/* IMS 1.1: a full file is a snapshot (absence is
			 * removal), a delta applies recstatus 1/2/3 */
	RX_ITSLEARNING	/* PIFU-IMS full snapshots only: a mirror, delete
			 * by absence */
};

void	 rx_init(struct rx_state *);
void	 rx_free(struct rx_state *);
/* Upsert a record by key (copies the strings; NULL is ""). */
void	 rx_put_person(struct rx_state *, const struct rx_person *);
void	 rx_put_group(struct rx_state *, const struct rx_group *);
void	 rx_put_member(struct rx_state *, const struct rx_member *);
/*
 * Import the delivered file at path with the semantics of kind.
 * Returns 0, or -1 with the reason in err (a file the receiver would
 * refuse: not well-formed, wrong namespace, a delta for itslearning).
 */
int	 rx_import(struct rx_state *, enum rx_kind, const char *path,
	    char *err, size_t errlen);
/* 1 if a and b hold the same records; else 0 and the first difference
 * in why. */
int	 rx_equal(const struct rx_state *a, const struct rx_state *b,
	    char *why, size_t whylen);
/* A table of the state (one line per record), malloc'd. */
char	*rx_table(const struct rx_state *);

/* ------------------------------------------------------------------ */
/*
 * The moodle profile's receiver: Moodle 4.5's enrol_imsenterprise as
 * measured (FORMAT.md section 9).  A line reader with no XML parser
 * (entities kept literally), the first match of each field, roletype and
 * authenticationtype only as first attributes; persons updated by
 * idnumber (ignored if missing), created only if missing, deleted by
 * username; courses created whatever the recstatus, renamed from <short>
 * and <full>, hidden by recstatus 3; an unenrol drops every role; a
 * role timeframe's begin and end with restrict="1" set the user
 * enrolment's start and end, on every enrol of it; one
 * exception (a column too long, a taken username or short name) aborts
 * the rest of the file and the file is tried again; a file is skipped
 * when its path is the same and it is not newer with other content; a
 * gzip file imports nothing.  Fixed-size tables (a test's roster).
 */
#define RX_MOODLE_USERS		1024
#define RX_MOODLE_COURSES	128
#define RX_MOODLE_ENROLS	8192

struct rx_muser {
	char	*idnumber, *username, *first, *last, *email, *auth;
	int	 deleted;
};

struct rx_mcourse {
	char	*idnumber, *shortname, *fullname;
	int	 visible;
};

struct rx_menrol {
	int	 course, user, role;	/* indexes of c[] and u[]; 1..8 */
	/* The user enrolment's timestart and timeend (one per course and
	 * user, whatever the role) as YYYY-MM-DD, "" for 0. */
	char	 start[11], end[11];
};

/* What Moodle holds, and what its cron keeps of the last file. */
struct rx_moodle {
	struct rx_muser	  u[RX_MOODLE_USERS];
	int		  nu;
	struct rx_mcourse c[RX_MOODLE_COURSES];
	int		  nc;
	struct rx_menrol  e[RX_MOODLE_ENROLS];
	int		  ne;
	char		  prev_path[4096];
	time_t		  prev_time;
	unsigned char	  prev_hash[32];
	int		  deleted_seq;
	int		  exception;	/* the last import aborted */
	char		  why[256];
	int		  records;	/* read by the last import */
};

/*
 * Moodle's cron task over the file at path: 1 imported, 0 skipped (seen
 * before), -1 aborted by an exception (the reason in m->why; prev_* then
 * stay, so the file is tried again).  A zeroed struct is an empty Moodle.
 */
int	 rx_moodle_import(struct rx_moodle *, const char *path);
/* Free what the model holds; it is empty afterwards. */
void	 rx_moodle_free(struct rx_moodle *);
/* The live user with this idnumber (byid) or username, or -1. */
int	 rx_moodle_user(const struct rx_moodle *, int byid, const char *v);
/* The course with this idnumber (byid) or short name, or -1. */
int	 rx_moodle_course(const struct rx_moodle *, int byid, const char *v);

/* ------------------------------------------------------------------ */
/* A churning export (persons, groups, memberships) for CSV sources.   */

struct rx_world;

/* A world of about npersons persons in a district of two schools. */
struct rx_world *rx_world_new(unsigned seed, size_t npersons);
void	 rx_world_free(struct rx_world *);
/*
 * One night of churn: inserts, renames, leavers, deactivations,
 * reactivations, role changes, ended memberships, course renames, new
 * and removed courses.  Counts what it did into the world.
 */
void	 rx_world_churn(struct rx_world *);
/*
 * Undo part of the last churn: the persons and the course it added
 * leave, the memberships it switched on or off switch back.  What a
 * run that stopped between delivery and commit must not lose track of.
 */
void	 rx_world_revert(struct rx_world *);
/* Write persons.csv, groups.csv and memberships.csv into dir, with
 * the columns of rx_world_columns. */
void	 rx_world_write(const struct rx_world *, const char *dir);
/* The YAML of source.columns for those files (nin: whether to map the
 * national identity number column). */
const char *rx_world_columns(int nin);
/*
 * What a receiver of kind must hold after importing tonight's file:
 * the export as the profile carries it (itslearning: PIFU group types,
 * no institution role; the national identity number only if nin).
 */
void	 rx_world_expect(const struct rx_world *, enum rx_kind, int nin,
	    struct rx_state *out);
/* A random number below n from the world's generator. */
unsigned rx_world_rand(struct rx_world *, unsigned n);
/* "inserts=N renames=N ..." of the last churn, static buffer. */
const char *rx_world_churned(const struct rx_world *);

#endif
