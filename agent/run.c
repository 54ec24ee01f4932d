/*
 * run.c -- the nightly run: read, diff, judge, write, deliver, commit,
 * mail.  Calls the stages in this order and owns nothing else.
 *
 * The snapshot advances only after delivery succeeded; a run that
 * stops anywhere before that (an error, a block, a crash) leaves the
 * old snapshot, and the next run recomputes the same change set.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sisfeed.h"

/*
 * Work a second thread does while the run goes on (on two cores the
 * night is that much shorter): loading the snapshot while the export is
 * read, writing the new snapshot's index while the file is written and
 * delivered.  The run joins the job before it touches what the job
 * fills in; the job's error message comes back in err (messages are
 * per thread).
 */
struct job {
	pthread_t		 tid;
	int			 running;
	int			 rc;		/* 0, 1 or -1, as the work's */
	char			 err[1024];
	double			 seconds;	/* its wall time */
	const struct config	*cfg;
	char			 path[PATH_MAX];
	const struct roster	*in;
	struct roster		*out;
	struct rindex_pending	*pi;		/* the index written */
};

struct run {
	const struct config	*cfg;
	const struct run_options *opts;
	struct run_report	 rep;
	struct roster		 nr;		/* tonight's export */
	struct roster		 or;		/* the snapshot */
	struct changeset	 cs;
	struct verdict		 v;
	struct rejects		 rj;
	int			 have_snapshot;
	int			 delivered;	/* marked: full_tmp stays for
						 * the roll forward */
	struct export_size	 sizes[EXPORT_FILES];	/* as read */
	size_t			 nsizes;
	char			 rejects_tmp[PATH_MAX];
	char			 full_tmp[PATH_MAX];	/* the new snapshot */
	char			 delta_tmp[PATH_MAX];
	char			 window_tmp[PATH_MAX];	/* cumulative */
	struct timespec		 t_stage;
	double			 cpu_stage;	/* process CPU at its begin */
	long			 sys_stage;	/* and its system CPU, in us */
	long			 flt_stage;	/* and its page faults */
	struct job		 load;		/* the snapshot, read early */
	struct job		 index;		/* the new snapshot's index */
};

/*
 * Fault injection for the crash tests: SISFEED_CRASH_AFTER=STAGE kills
 * the process with SIGKILL right after that stage, as a power cut
 * would.
 */
static void
crash_point(const char *stage)
{
	fault_point(stage);
}

static double
elapsed(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - since->tv_sec) +
	    (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

/* CPU seconds (user and system, every thread) the process has used;
 * *ru filled in (zeroed if getrusage fails). */
static double
cpu_used(struct rusage *ru)
{
	if (getrusage(RUSAGE_SELF, ru) == -1) {
		memset(ru, 0, sizeof(*ru));
		return 0;
	}
	return (double)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) +
	    (double)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
}

static void
stage_begin(struct run *r)
{
	struct rusage ru;

	clock_gettime(CLOCK_MONOTONIC, &r->t_stage);
	r->cpu_stage = cpu_used(&ru);
	r->sys_stage = ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
	r->flt_stage = ru.ru_minflt + ru.ru_majflt;
}

/* The stage's wall and CPU seconds (on a loaded machine the CPU says
 * what the stage costs), the peak RSS so far, and of the CPU the
 * kernel's share and the page faults (fresh memory the kernel clears),
 * with -v. */
static void
stage_end(struct run *r, int s)
{
	struct rusage ru;
	double cpu;

	r->rep.seconds[s] += elapsed(&r->t_stage);
	cpu = cpu_used(&ru) - r->cpu_stage;
	log_debug("stage %s: %.3f s, cpu %.3f s, peak RSS %ld MiB, "
	    "system %.3f s, page faults %ld", stage_name(s),
	    r->rep.seconds[s], cpu, ru.ru_maxrss / 1024,
	    (double)(ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec -
	    r->sys_stage) / 1e6, ru.ru_minflt + ru.ru_majflt - r->flt_stage);
}

/* Mark the run failed in stage s with the last error; returns -1. */
static int
fail(struct run *r, int s)
{
	r->rep.status = RUN_FAILED;
	snprintf(r->rep.stage, sizeof(r->rep.stage), "%s", stage_name(s));
	snprintf(r->rep.error, sizeof(r->rep.error), "%s", error_last());
	return -1;
}

/*
 * The last error of the mail module with one "mail: " in front (its
 * messages mostly carry it already).
 */
static const char *
mail_error(void)
{
	static char buf[1100];
	const char *e = error_last();

	if (strncmp(e, "mail: ", 6) == 0)
		return e;
	snprintf(buf, sizeof(buf), "mail: %s", e);
	return buf;
}

static int
read_export(const struct config *cfg, struct roster *nr,
    struct rejects *rj)
{
	switch (cfg->source.format) {
	case SOURCE_CSV:
		return csv_read_roster(cfg, nr, rj);
	case SOURCE_ONEROSTER:
		return oneroster_read_roster(cfg, nr, rj);
	case SOURCE_IMS:
		return ims_read_source(cfg, nr, rj);
	}
	return error_set("unknown source format");
}

/* The files persons, groups and memberships come from, for rejects. */
static void
source_files(const struct config *cfg, const char **pfile,
    const char **gfile, const char **mfile)
{
	switch (cfg->source.format) {
	case SOURCE_CSV:
		*pfile = cfg->source.persons;
		*gfile = cfg->source.groups;
		*mfile = cfg->source.memberships;
		return;
	case SOURCE_ONEROSTER:
		*pfile = *gfile = *mfile = cfg->source.dir;
		return;
	case SOURCE_IMS:
		*pfile = *gfile = *mfile = cfg->source.file;
		return;
	}
	*pfile = *gfile = *mfile = "";
}

static void ims_options_of(const struct config *, struct ims_options *,
    int);

/* What the profile's receiver cannot take leaves the export as
 * rejects (ims_screen).  0 or -1. */
static int
screen_export(struct run *r)
{
	struct ims_options o;
	const char *pfile, *gfile, *mfile;

	ims_options_of(r->cfg, &o, 0);
	source_files(r->cfg, &pfile, &gfile, &mfile);
	if (ims_screen(&o, &r->nr, &r->rj, pfile, gfile, mfile,
	    &r->rep.altered) == -1)
		return -1;
	if (r->rep.altered > 0)
		log_warn("%zu records hold '&', '<' or '>', which the "
		    "receiver stores as entities (named above)",
		    r->rep.altered);
	return 0;
}

/*
 * Read the snapshot at path into or: from its companion index when that
 * belongs to it, else by parsing the XML.  Returns 0 or -1.
 */
static int
read_snapshot(const struct config *cfg, const char *path, struct roster *or)
{
	char idx[PATH_MAX];
	unsigned char digest[32];
	int rc;

	if (snapshot_digest(cfg->state_dir, digest) == -1 ||
	    path_fmt(idx, sizeof(idx), "%s/snapshot.idx", cfg->state_dir)
	    == -1)
		return -1;
	if ((rc = rindex_read(idx, or, digest)) <= 0) {
		if (rc == 0)
			log_debug("snapshot read from its index %s", idx);
		return rc;
	}
	log_debug("snapshot index missing or stale: parsing %s", path);
	if ((rc = ims_read_snapshot(path, or)) <= 0)
		return rc;
	log_debug("%s: not in the shape sisfeed writes: the general reader",
	    path);
	return ims_read(path, or, NULL);
}

/*
 * Run fn(j) on a thread of its own (thread_start).  0, or -1 when no
 * thread could be made: the caller then does the work itself.
 */
static int
job_start(struct job *j, void *(*fn)(void *))
{
	int rc;

	if ((rc = thread_start(&j->tid, fn, j)) != 0) {
		log_debug("no second thread (%s): working in one",
		    strerror(rc));
		return -1;
	}
	j->running = 1;
	return 0;
}

/* Wait for the job if it runs.  Returns 1 if it ran (its rc and err
 * are set), 0 if it did not. */
static int
job_join(struct job *j)
{
	if (!j->running)
		return 0;
	if (pthread_join(j->tid, NULL) != 0)
		abort();	/* only a corrupt pthread_t fails */
	j->running = 0;
	return 1;
}

/* The snapshot loader: read_snapshot into j->out. */
static void *
load_main(void *arg)
{
	struct job *j = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((j->rc = read_snapshot(j->cfg, j->path, j->out)) == -1)
		snprintf(j->err, sizeof(j->err), "%s", error_last());
	j->seconds = elapsed(&t0);
	return NULL;
}

/* The index writer: rindex_prepare of j->in to j->path. */
static void *
index_main(void *arg)
{
	struct job *j = arg;
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((j->pi = rindex_prepare(j->path, j->in)) == NULL) {
		j->rc = -1;
		snprintf(j->err, sizeof(j->err), "%s", error_last());
	}
	j->seconds = elapsed(&t0);
	return NULL;
}

/*
 * Start loading the snapshot into r->or while the export is read, if
 * there is one.  Nothing to report: when no thread starts, stage_diff
 * reads it itself.
 */
static void
load_start(struct run *r)
{
	struct job *j = &r->load;

	if (!snapshot_path(r->cfg->state_dir, j->path, sizeof(j->path)))
		return;
	j->cfg = r->cfg;
	j->out = &r->or;
	(void)job_start(j, load_main);
}

/*
 * Stage read: tonight's export into r->nr, rejects into the run's
 * rejects file (kept only when complete), then the sanity gate on the
 * share of rejected records.
 */
static int
stage_read(struct run *r, int keep_rejects)
{
	const struct config *cfg = r->cfg;
	double share;
	int rc;

	stage_begin(r);
	if (monitor_export_fresh(cfg, r->rep.started) == -1 ||
	    history_sizes_measure(cfg, r->sizes, &r->nsizes) == -1)
		return fail(r, ST_READ);
	if (keep_rejects) {
		if (path_fmt(r->rep.rejects_path, sizeof(r->rep.rejects_path),
		    "%s/rejects/%s.txt", cfg->state_dir, r->rep.run_id) == -1 ||
		    path_fmt(r->rejects_tmp, sizeof(r->rejects_tmp),
		    "%s.tmp", r->rep.rejects_path) == -1)
			return fail(r, ST_READ);
		if ((r->rj.fp = fopen(r->rejects_tmp, "w")) == NULL) {
			error_sys("%s", r->rejects_tmp);
			return fail(r, ST_READ);
		}
		fchmod(fileno(r->rj.fp), 0600);
	} else if ((r->rj.fp = tmpfile()) == NULL) {
		error_sys("tmpfile");
		return fail(r, ST_READ);
	}
	load_start(r);
	rc = read_export(cfg, &r->nr, &r->rj);
	if (rc == 0)
		rc = screen_export(r);
	r->rep.rejects = r->rj.count;
	r->rep.count[TYPE_PERSON] = r->nr.npersons;
	r->rep.count[TYPE_GROUP] = r->nr.ngroups;
	r->rep.count[TYPE_MEMBER] = r->nr.nmembers;
	if (keep_rejects) {
		if (fflush(r->rj.fp) == EOF || fsync(fileno(r->rj.fp)) == -1) {
			error_sys("%s", r->rejects_tmp);
			rc = -1;
		}
		fclose(r->rj.fp);
		r->rj.fp = NULL;
		if (rc == 0 && r->rj.count == 0) {
			/* Nothing rejected: no empty file. */
			unlink(r->rejects_tmp);
			r->rep.rejects_path[0] = '\0';
		} else if (rename(r->rejects_tmp, r->rep.rejects_path) == -1 &&
		    rc == 0)
			rc = error_sys("%s", r->rep.rejects_path);
	}
	stage_end(r, ST_READ);
	if (rc == -1)
		return fail(r, ST_READ);
	if (r->rj.count > 0)
		log_warn("%zu records rejected%s%s", r->rj.count,
		    keep_rejects ? ", see " : "",
		    keep_rejects ? r->rep.rejects_path : "");
	/* Reading rules (issue 10): noted, not counted for max_rejects. */
	if (r->rj.notes > 0 || r->rj.dependents > 0)
		log_warn("%zu records kept by a reading rule, %zu lost with "
		    "a rejected record they depend on%s%s", r->rj.notes,
		    r->rj.dependents, keep_rejects ? ", see " : "",
		    keep_rejects ? r->rep.rejects_path : "");
	share = r->rj.records > 0 ?
	    100.0 * (double)r->rj.count / (double)r->rj.records : 0;
	if (r->rj.count > 0 && share > cfg->safety.max_rejects) {
		error_set("%zu of %zu records rejected (%.1f%% > "
		    "safety.max_rejects %g%%): the export looks broken; "
		    "the first: %s", r->rj.count, r->rj.records, share,
		    cfg->safety.max_rejects, r->rj.first);
		return fail(r, ST_READ);
	}
	crash_point("read");
	return 0;
}

/*
 * Start writing the index of tonight's roster (the snapshot to be)
 * while the file is written and delivered; write_index finishes it at
 * the commit.  r->nr is only read from here on.  Nothing to report:
 * when no thread starts, write_index does all of it.
 */
static void
index_start(struct run *r)
{
	struct job *j = &r->index;

	if (path_fmt(j->path, sizeof(j->path), "%s/snapshot.idx",
	    r->cfg->state_dir) == -1)
		return;
	j->in = &r->nr;
	(void)job_start(j, index_main);
}

/*
 * No snapshot: a first run only when the state shows no delivery (or
 * an initial load was asked for).  0, or -1 with the way on.
 */
static int
snapshot_lost(struct run *r)
{
	char why[PATH_MAX + 64];
	int lost;

	if ((lost = state_lost(r->cfg->state_dir, why, sizeof(why))) != 1)
		return lost;
	return error_set("%s/snapshot is missing, but %s: earlier runs "
	    "delivered, and a first run would delete nothing; put it back "
	    "with 'sisfeed restore' (the newest good one in history/, or a "
	    "FILE) or start over with 'sisfeed restore --initial'",
	    r->cfg->state_dir, why);
}

/*
 * Stage diff: read the snapshot (if any) and compute the change set.
 */
static int
stage_diff(struct run *r)
{
	char path[PATH_MAX];
	int rc;

	stage_begin(r);
	r->have_snapshot = snapshot_path(r->cfg->state_dir, path, sizeof(path));
	if (!r->have_snapshot && snapshot_lost(r) == -1)
		return fail(r, ST_DIFF);
	/* The reader's message names the snapshot's path already. */
	if (job_join(&r->load)) {
		log_debug("snapshot loaded beside the read in %.3f s",
		    r->load.seconds);
		if (r->load.rc == -1)
			error_set("%s", r->load.err);
		else if (!r->have_snapshot) {
			/* gone meanwhile: cannot happen under the lock */
			roster_free(&r->or);
			roster_init(&r->or);
		}
		rc = r->load.rc;
	} else
		rc = r->have_snapshot ? read_snapshot(r->cfg, path, &r->or) : 0;
	if (r->have_snapshot && rc == -1) {
		error_prefix("the snapshot cannot be read ('sisfeed restore' "
		    "puts back the newest good one from history/): ");
		return fail(r, ST_DIFF);
	}
	if (diff_compute(&r->or, &r->nr, &r->cs) == -1)
		return fail(r, ST_DIFF);
	r->rep.cs = &r->cs;
	stage_end(r, ST_DIFF);
	crash_point("diff");
	return 0;
}

static char	*sample_of(const struct run *, int, const struct change *);

/*
 * A pause (safety.pause, sisfeed pause): the held kinds of change are
 * undone in tonight's roster, which then holds what the receiver will
 * hold; the change set is computed again from it.  The held changes
 * are counted and sampled for the report.  0 or -1.
 */
static int
stage_hold(struct run *r)
{
	struct roster dr;
	struct changeset cs;
	size_t i, n = 0;
	int t;

	if (!r->have_snapshot || (r->rep.held_mask = pause_active(r->cfg,
	    r->rep.started, &r->rep.held_until)) == 0)
		return 0;
	stage_begin(r);
	roster_init(&dr);
	memset(&cs, 0, sizeof(cs));
	if (hold_apply(&r->or, &r->nr, &r->cs, r->rep.held_mask, &dr,
	    r->rep.held) == -1 || diff_compute(&r->or, &dr, &cs) == -1) {
		roster_free(&dr);
		return fail(r, ST_DIFF);
	}
	for (t = 0; t < NTYPES; t++)
		for (i = 0; i < r->cs.n[t] && n < REPORT_SAMPLES; i++)
			if (hold_change(&r->cs.c[t][i], r->rep.held_mask) &&
			    (r->rep.held_samples[n] = sample_of(r, t,
			    &r->cs.c[t][i])) != NULL)
				n++;
	changeset_free(&r->cs);
	r->cs = cs;
	roster_free(&r->nr);
	r->nr = dr;
	stage_end(r, ST_DIFF);
	log_info("paused: %s held out of the file (%zu persons, %zu "
	    "memberships)", pause_hold_name(r->rep.held_mask),
	    r->rep.held[TYPE_PERSON][OP_DELETE] +
	    r->rep.held[TYPE_PERSON][KIND_DEACTIVATE],
	    r->rep.held[TYPE_MEMBER][OP_DELETE] +
	    r->rep.held[TYPE_MEMBER][KIND_DEACTIVATE]);
	return 0;
}

static char *
sample_of(const struct run *r, int t, const struct change *c)
{
	const struct roster *ro = c->op == OP_DELETE ? &r->or : &r->nr;
	size_t i = c->op == OP_DELETE ? c->old : c->new;
	char buf[1024];

	if (t == TYPE_PERSON) {
		const struct person *p = &ro->persons[i];

		snprintf(buf, sizeof(buf), "%s (%s %s%s)", p->id, p->given,
		    p->family, p->active ? "" : ", inactive");
	} else if (t == TYPE_GROUP) {
		const struct group *g = &ro->groups[i];

		snprintf(buf, sizeof(buf), "%s (%s)", g->id, g->shortname);
	} else {
		const struct membership *m = &ro->members[i];

		snprintf(buf, sizeof(buf), "%s in %s as %s%s",
		    ro->persons[m->person].id, ro->groups[m->group].id,
		    role_name(m->role), m->active ? "" : ", inactive");
	}
	return strdup(buf);
}

/*
 * Samples of the records each tripped threshold would touch (every
 * non-empty cell when all is set: the plan command).
 */
static void
collect_samples(struct run *r, int all)
{
	size_t i;
	int t;

	for (t = 0; t < NTYPES; t++) {
		for (i = 0; i < r->cs.n[t]; i++) {
			const struct change *c = &r->cs.c[t][i];
			size_t *n = &r->rep.nsamples[t][c->op];

			if (!all && !r->v.tripped[t][c->op])
				continue;
			if (*n >= REPORT_SAMPLES)
				continue;
			if ((r->rep.samples[t][c->op][*n] =
			    sample_of(r, t, c)) != NULL)
				(*n)++;
		}
	}
}

static void	window_samples(const struct changeset *, struct check *);

/*
 * The limits over windows of days: what was delivered in the last N
 * days (STATE/delivered.log) plus tonight, against the snapshot's
 * count of the type.  0 or -1.
 */
static int
judge_windows(struct run *r)
{
	const struct safety_nets *nets = &r->cfg->nets;
	size_t sum[NTYPES][NKINDS], i, now_n;
	struct check *c;

	for (i = 0; i < nets->nwindows; i++) {
		const struct window_limit *w = &nets->windows[i];
		int t = w->type, k = w->kind;

		if (history_sum(r->cfg, r->rep.started - (time_t)w->days *
		    86400, r->v.approval_id, sum) == -1)
			return -1;
		now_n = k < NOPS ? r->cs.count[t][k] :
		    r->cs.flips[t][k - NOPS];
		if ((c = verdict_add_check(&r->v, SCOPE_WINDOW, NULL, w->days,
		    t, k, sum[t][k] + now_n, r->cs.base[t],
		    r->cfg->safety.min_base, &w->th)) == NULL)
			return -1;
		window_samples(&r->cs, c);
	}
	return 0;
}

/* Tonight's changes of c's type and kind as c's samples. */
static void
window_samples(const struct changeset *cs, struct check *c)
{
	size_t i;

	for (i = 0; i < cs->n[c->type] && c->nsample < CHECK_SAMPLES; i++) {
		const struct change *ch = &cs->c[c->type][i];

		if (c->kind < NOPS ? ch->op == c->kind :
		    ch->flip == c->kind - NOPS + 1)
			c->sample[c->nsample++] = (uint32_t)i;
	}
}

/* The descriptions of the changes each check holds as samples. */
static void
check_samples(struct run *r)
{
	size_t i, j;

	for (i = 0; i < r->v.nchecks; i++) {
		struct check *c = &r->v.checks[i];

		for (j = 0; j < c->nsample; j++)
			c->sample_text[j] = sample_of(r, c->type,
			    &r->cs.c[c->type][c->sample[j]]);
	}
}

static int
save_pending(struct run *r)
{
	char path[PATH_MAX], buf[2048], *cmd;
	int n;

	if (path_fmt(path, sizeof(path), "%s/pending", r->cfg->state_dir)
	    == -1 || (cmd = report_approve_command(&r->rep)) == NULL)
		return -1;
	n = snprintf(buf, sizeof(buf),
	    "approval_id %s\nrun %s\nreason %s\n"
	    "persons +%zu ~%zu -%zu\ngroups +%zu ~%zu -%zu\n"
	    "memberships +%zu ~%zu -%zu\n"
	    "approve on %s with: %s\n",
	    r->v.approval_id, r->rep.run_id, r->v.reason,
	    r->cs.count[0][0], r->cs.count[0][1], r->cs.count[0][2],
	    r->cs.count[1][0], r->cs.count[1][1], r->cs.count[1][2],
	    r->cs.count[2][0], r->cs.count[2][1], r->cs.count[2][2],
	    r->rep.host, cmd);
	free(cmd);
	if (n < 0 || (size_t)n >= sizeof(buf))
		n = (int)strlen(buf);
	return file_write_atomic(path, buf, (size_t)n);
}

/*
 * --approve ID needs a blocked run waiting with that very id: a typo
 * must not re-run the job and mail BLOCKED to everyone again.  Returns
 * 0 when STATE/pending holds id, -1 (error set) when it does not.
 */
static int
approval_is_pending(const struct config *cfg, const char *id)
{
	char path[PATH_MAX], line[128];
	FILE *fp;

	if (path_fmt(path, sizeof(path), "%s/pending", cfg->state_dir) == -1)
		return -1;
	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT)
			return error_set("--approve %s: no run is waiting for "
			    "approval (%s does not exist)", id, path);
		return error_sys("--approve %s: %s", id, path);
	}
	if (fgets(line, sizeof(line), fp) == NULL)
		line[0] = '\0';
	fclose(fp);
	line[strcspn(line, "\n")] = '\0';
	if (strncmp(line, "approval_id ", 12) == 0 &&
	    strcmp(line + 12, id) == 0)
		return 0;
	return error_set("--approve %s: the run waiting for approval has "
	    "id %.16s (see %s); nothing was run", id,
	    strncmp(line, "approval_id ", 12) == 0 ? line + 12 : "?", path);
}

static void
clear_pending(const struct config *cfg)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/pending", cfg->state_dir) == 0)
		unlink(path);
}

/* The approval's reason, time and expiry into the report. */
static void
approval_to_report(struct run *r, const struct approval *a)
{
	snprintf(r->rep.approval_reason, sizeof(r->rep.approval_reason),
	    "%s", a->reason);
	r->rep.approved_at = a->at;
	r->rep.approval_expires = approval_expires(r->cfg, a);
}

/*
 * An approval stands until its change set is delivered: when the run
 * that was approved fails later (the server was down), the next run
 * with the very same change set (same approval id, so the same
 * snapshot and the same changes) goes on without asking again, as long
 * as it has not run out (safety.approval_ttl) and covers what trips.
 * STATE/approved (approval.c) holds it; the commit removes it.
 */
static int
save_approval(struct run *r)
{
	struct approval a;

	memset(&a, 0, sizeof(a));
	snprintf(a.id, sizeof(a.id), "%s", r->v.approval_id);
	snprintf(a.by, sizeof(a.by), "%s", r->rep.approved_by);
	snprintf(a.reason, sizeof(a.reason), "%s",
	    r->opts->reason != NULL ? r->opts->reason : "");
	a.at = time(NULL);
	if (verdict_scope(&r->v, a.scope, sizeof(a.scope)) == -1)
		log_warn("approval %s: too many tripped checks to name them "
		    "all; the next run may ask again", a.id);
	approval_to_report(r, &a);
	if (approval_save(r->cfg, &a) == -1)
		log_warn("%s", error_last());
	return 0;
}

/*
 * 1 if STATE/approved approves this very change set: the same id, not
 * run out (safety.approval_ttl), and covering everything that trips
 * now; sets approved_by.  0 if not; when an approval of this id
 * exists but does not hold, why says so.
 */
static int
load_approval(struct run *r, char *why, size_t whylen)
{
	struct approval a;
	time_t exp;
	char when[32];
	struct tm tm;

	if (!approval_load(r->cfg, &a) || strcmp(a.id, r->v.approval_id) != 0)
		return 0;
	if ((exp = approval_expires(r->cfg, &a)) != 0 && time(NULL) >= exp) {
		gmtime_r(&a.at, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		snprintf(why, whylen, "the approval of id %s by %.60s on %s "
		    "ran out after safety.approval_ttl (%ld s)", a.id, a.by,
		    when, r->cfg->nets.approval_ttl);
		return 0;
	}
	if (!verdict_covered(&r->v, a.scope)) {
		snprintf(why, whylen, "the approval of id %s by %.60s covers "
		    "only %.200s", a.id, a.by, a.scope);
		return 0;
	}
	snprintf(r->rep.approved_by, sizeof(r->rep.approved_by), "%s", a.by);
	approval_to_report(r, &a);
	return 1;
}

static void
clear_approval(const struct config *cfg)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/approved", cfg->state_dir) == 0)
		unlink(path);
}

/* Tonight's file sizes against the last delivery's
 * (safety.max_shrink).  0 or -1. */
static int
judge_sizes(struct run *r)
{
	struct export_size was[EXPORT_FILES];
	size_t nwas;

	if (history_sizes_load(r->cfg, was, &nwas) == -1)
		return -1;
	safety_judge_sizes(r->cfg, was, nwas, r->sizes, r->nsizes, &r->v);
	return 0;
}

/* Keep the sizes of the export the receiver now holds; a failure
 * costs the next run its size check, nothing more. */
static void
save_sizes(const struct run *r)
{
	if (history_sizes_save(r->cfg, r->sizes, r->nsizes) == -1)
		log_warn("%s (the next run cannot judge the export's size)",
		    error_last());
}

/*
 * Stage safety: the verdict, and what an override or an approval id
 * makes of it.  Returns 0 to go on, 1 when the run is blocked, -1 on
 * error.
 */
static int
stage_safety(struct run *r)
{
	unsigned char sd[32];
	const char *want = r->opts->approve;
	char why[512] = "";

	stage_begin(r);
	if (snapshot_digest(r->cfg->state_dir, sd) == -1)
		return fail(r, ST_SAFETY);
	if (safety_evaluate(r->cfg, &r->cs, !r->have_snapshot, sd, &r->v)
	    == -1 || (r->have_snapshot && (safety_evaluate_orgs(r->cfg,
	    &r->or, &r->nr, &r->cs, &r->v) == -1 || judge_windows(r) == -1)))
		return fail(r, ST_SAFETY);
	if (r->have_snapshot && judge_sizes(r) == -1)
		return fail(r, ST_SAFETY);
	r->rep.v = &r->v;
	check_samples(r);
	snprintf(r->rep.approval_id, sizeof(r->rep.approval_id), "%s",
	    r->v.approval_id);
	collect_samples(r, r->opts->plan);
	stage_end(r, ST_SAFETY);
	if (!r->v.blocked)
		return 0;
	if (r->opts->override && !r->opts->plan) {
		approval_identity(r->rep.approved_by,
		    sizeof(r->rep.approved_by));
		log_info("blocked (%s); approved by %s with --override",
		    r->v.reason, r->rep.approved_by);
		return save_approval(r);
	}
	if (want != NULL && strcmp(want, r->v.approval_id) == 0 &&
	    !r->opts->plan) {
		approval_identity(r->rep.approved_by,
		    sizeof(r->rep.approved_by));
		log_info("blocked (%s); approved by %s with id %s",
		    r->v.reason, r->rep.approved_by, want);
		return save_approval(r);
	}
	if (!r->opts->plan && load_approval(r, why, sizeof(why))) {
		log_info("blocked (%s); approved earlier by %s (id %s), not "
		    "yet delivered", r->v.reason, r->rep.approved_by,
		    r->v.approval_id);
		return 0;
	}
	r->rep.status = RUN_BLOCKED;
	if (want != NULL)
		snprintf(r->rep.reason, sizeof(r->rep.reason),
		    "approval id %.16s does not match this change set (the "
		    "export or the snapshot changed since); %.380s", want,
		    r->v.reason);
	else if (why[0] != '\0')
		snprintf(r->rep.reason, sizeof(r->rep.reason), "%.250s; "
		    "%.250s", why, r->v.reason);
	else
		snprintf(r->rep.reason, sizeof(r->rep.reason), "%s",
		    r->v.reason);
	if (!r->opts->plan && save_pending(r) == -1)
		log_warn("%s", error_last());
	return 1;
}

static void
ims_options_of(const struct config *cfg, struct ims_options *o, int delta)
{
	memset(o, 0, sizeof(*o));
	o->source = cfg->output.source;
	o->datasource = cfg->output.datasource;
	o->target = cfg->output.target;
	o->gzip = cfg->output.compress == COMPRESS_GZIP;
	o->delta = delta;
	o->threads = cfg->output.threads;
	o->profile = cfg->output.profile;
	o->nin = cfg->source.pcol[PF_NIN] != NULL;
}

/* Read STATE/window and split it (window_split).  0 or -1. */
static int
load_journal(const struct config *cfg, struct sbuf *nights,
    struct sbuf *tried, int *tried_all, int *any_tried)
{
	struct sbuf old;
	char path[PATH_MAX];
	int rc = -1;

	memset(&old, 0, sizeof(old));
	if (path_fmt(path, sizeof(path), "%s/window", cfg->state_dir) == -1)
		return -1;
	if (window_load(path, &old) == 0 &&
	    sbuf_done(&old, "journal") != NULL) {
		window_split(old.p, old.len, nights, tried, tried_all,
		    any_tried);
		rc = 0;
	}
	free(old.p);
	return rc;
}

/* 1 if a run delivered and did not commit since the last commit (its
 * keys wait in the journal), 0 if not, -1 on error. */
static int
journal_tried(const struct config *cfg)
{
	struct sbuf nights, tried;
	int all, any, rc;

	memset(&nights, 0, sizeof(nights));
	memset(&tried, 0, sizeof(tried));
	rc = load_journal(cfg, &nights, &tried, &all, &any);
	free(nights.p);
	free(tried.p);
	return rc == -1 ? -1 : any;
}

/*
 * One journal: the committed nights, then tonight's as kind ("tried" or
 * "night") holding the earlier tried keys and tonight's, each key once
 * (so a retried night replaces the tried one); all 1: every
 * record, 2: every record, freed first.  NULL (error
 * set) on no memory.
 */
static char *
journal_text(struct run *r, const struct sbuf *nights,
    const struct sbuf *tried, int all, const char *kind, size_t *len)
{
	struct sbuf sb;
	char *text;

	memset(&sb, 0, sizeof(sb));
	if (nights->len > 0)
		sbuf_putn(&sb, nights->p, nights->len);
	sbuf_printf(&sb, "%s %s%s\n", kind, r->rep.run_id, all == 2 ?
	    " all free" : all ? " all" : "");
	if (!all) {
		size_t from = sb.len;

		if (tried->len > 0)
			sbuf_putn(&sb, tried->p, tried->len);
		window_keys(&sb, &r->or, &r->nr, &r->cs);
		window_merge(&sb, from);
	}
	*len = sb.len;
	if ((text = sbuf_done(&sb, "journal")) == NULL)
		return NULL;
	return text;
}

/*
 * The cumulative file (profile moodle) from the journal's last
 * output.window committed nights, the keys of runs that delivered and
 * did not commit, and tonight's.  Tonight's keys are in the journal
 * (as tried) before the file goes out; the journal the commit installs
 * (tonight's as a night) waits in window_tmp.  0 or -1.
 */
static int
write_cumulative(struct run *r, const struct ims_options *o)
{
	const struct config *cfg = r->cfg;
	struct sbuf nights, tried;
	char path[PATH_MAX], *pend = NULL, *done = NULL;
	size_t plen, dlen, from;
	int all, any, rc = -1;
	struct timespec t0;

	memset(&nights, 0, sizeof(nights));
	memset(&tried, 0, sizeof(tried));
	if (path_fmt(path, sizeof(path), "%s/window", cfg->state_dir) == -1 ||
	    path_fmt(r->window_tmp, sizeof(r->window_tmp), "%s/out/%s.window",
	    cfg->state_dir, r->rep.run_id) == -1 ||
	    path_fmt(r->delta_tmp, sizeof(r->delta_tmp), "%s/out/%s.delta",
	    cfg->state_dir, r->rep.run_id) == -1)
		return -1;
	if (load_journal(cfg, &nights, &tried, &all, &any) == -1)
		goto out;
	from = window_tail(nights.p, nights.len, cfg->output.window);
	if (from > 0) {
		memmove(nights.p, nights.p + from, nights.len - from);
		nights.len -= from;
	}
	/* 2: a first run delivered and did not commit */
	all = all ? 2 : !r->have_snapshot;
	if ((pend = journal_text(r, &nights, &tried, all, "tried", &plen)) ==
	    NULL || (done = journal_text(r, &nights, &tried, all, "night",
	    &dlen)) == NULL)
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (ims_write_moodle(r->delta_tmp, &r->nr, pend, plen, o,
	    cfg->output.moodle_auth) == -1 ||
	    file_write_atomic(path, pend, plen) == -1)
		goto out;
	log_debug("cumulative file written in %.3f s from a journal of "
	    "%zu bytes", elapsed(&t0), plen);
	from = window_tail(done, dlen, cfg->output.window);
	rc = file_write_atomic(r->window_tmp, done + from, dlen - from);
out:
	free(nights.p);
	free(tried.p);
	free(pend);
	free(done);
	return rc;
}

/*
 * Stage write: the new full file (tomorrow's snapshot) and, in delta
 * mode, the delta, both in state_dir/out; with a cumulative profile its
 * file and journal instead of the delta.
 */
static int
stage_write(struct run *r)
{
	const struct config *cfg = r->cfg;
	struct ims_options o;

	stage_begin(r);
	if (path_fmt(r->full_tmp, sizeof(r->full_tmp), "%s/out/%s.full",
	    cfg->state_dir, r->rep.run_id) == -1)
		return fail(r, ST_WRITE);
	ims_options_of(cfg, &o, 0);
	index_start(r);
	if (ims_write_full(r->full_tmp, &r->nr, &o) == -1)
		return fail(r, ST_WRITE);
	if (cfg->output.cumulative) {
		ims_options_of(cfg, &o, 1);
		if (write_cumulative(r, &o) == -1)
			return fail(r, ST_WRITE);
	} else if (cfg->output.mode == MODE_DELTA) {
		if (path_fmt(r->delta_tmp, sizeof(r->delta_tmp),
		    "%s/out/%s.delta", cfg->state_dir, r->rep.run_id) == -1)
			return fail(r, ST_WRITE);
		ims_options_of(cfg, &o, 1);
		if (ims_write_delta(r->delta_tmp, &r->nr, &r->or, &r->cs, &o)
		    == -1)
			return fail(r, ST_WRITE);
	}
	stage_end(r, ST_WRITE);
	crash_point("write");
	return 0;
}

/*
 * Stage deliver: the outgoing file under tonight's name.
 */
static int
stage_deliver(struct run *r)
{
	const char *out = r->cfg->output.mode == MODE_DELTA ||
	    r->cfg->output.cumulative ? r->delta_tmp : r->full_tmp;
	struct tm tm;
	struct stat st;

	stage_begin(r);
	localtime_r(&r->rep.started, &tm);
	if (strftime(r->rep.file_name, sizeof(r->rep.file_name),
	    r->cfg->output.name, &tm) == 0) {
		error_set("output.name: '%s' gives an empty name",
		    r->cfg->output.name);
		return fail(r, ST_DELIVER);
	}
	if (stat(out, &st) == 0)
		r->rep.file_size = st.st_size;
	if (deliver_file(r->cfg, out, r->rep.file_name, r->rep.remote_path,
	    sizeof(r->rep.remote_path)) == -1)
		return fail(r, ST_DELIVER);
	/* the receiver holds it: a stop before the commit rolls forward */
	if (snapshot_mark_delivered(r->cfg->state_dir, r->full_tmp) == -1)
		log_warn("%s", error_last());
	else
		r->delivered = 1;
	stage_end(r, ST_DELIVER);
	log_info("delivered %s (%lld bytes) to %s", r->rep.file_name,
	    (long long)r->rep.file_size, r->rep.remote_path);
	crash_point("deliver");
	return 0;
}

/*
 * Write the new snapshot's companion index from tonight's roster.  It
 * is a cache: a failure costs the next run a parse, nothing more.
 */
static void
write_index(struct run *r)
{
	char idx[PATH_MAX];
	unsigned char digest[32];
	struct rindex_pending *pi = NULL;
	struct timespec t0;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (job_join(&r->index)) {
		if ((pi = r->index.pi) == NULL) {
			log_warn("snapshot index: %s", r->index.err);
			return;
		}
		r->index.pi = NULL;
		log_debug("snapshot index payload written beside the write "
		    "in %.3f s", r->index.seconds);
	}
	if (snapshot_digest(r->cfg->state_dir, digest) == -1) {
		rindex_discard(pi);
		log_warn("snapshot index: %s", error_last());
		return;
	}
	if (pi != NULL)
		rc = rindex_finish(pi, digest);
	else if ((rc = path_fmt(idx, sizeof(idx), "%s/snapshot.idx",
	    r->cfg->state_dir)) == 0)
		rc = rindex_write(idx, &r->nr, digest);
	if (rc == -1)
		log_warn("snapshot index: %s", error_last());
	log_debug("snapshot index written in %.3f s", elapsed(&t0));
}

/*
 * Stage commit: the delivered state becomes the snapshot.
 */
static int
stage_commit(struct run *r)
{
	char path[PATH_MAX];

	stage_begin(r);
	if (history_append(r->cfg, r->v.approval_id, &r->cs, r->rep.started)
	    == -1)
		log_warn("%s (the windows of days will miss this run)",
		    error_last());
	/* The journal first: a crash before the snapshot moves makes the
	 * next run repeat tonight's keys, never lose them. */
	if (r->window_tmp[0] != '\0') {
		if (path_fmt(path, sizeof(path), "%s/window",
		    r->cfg->state_dir) == -1)
			return fail(r, ST_COMMIT);
		if (rename(r->window_tmp, path) == -1) {
			error_sys("%s", path);
			return fail(r, ST_COMMIT);
		}
		r->window_tmp[0] = '\0';
		if (fsync_dir_of(path) == -1)
			return fail(r, ST_COMMIT);
	}
	if (snapshot_commit(r->cfg->state_dir, r->full_tmp,
	    r->cfg->history) == -1)
		return fail(r, ST_COMMIT);
	r->full_tmp[0] = '\0';
	save_sizes(r);
	state_initial_done(r->cfg->state_dir);
	snapshot_clear_delivered(r->cfg->state_dir);
	clear_pending(r->cfg);
	clear_approval(r->cfg);
	write_index(r);
	stage_end(r, ST_COMMIT);
	crash_point("commit");
	return 0;
}

static const char *
status_word(const struct run_report *rep)
{
	switch (rep->status) {
	case RUN_COMPLETED:
		return rep->nothing_to_do ? "unchanged" : "completed";
	case RUN_BLOCKED:
		return "blocked";
	default:
		return "failed";
	}
}

/*
 * The approval's time, expiry and reason for the run log, into buf:
 * " approved_at=EPOCH expires=EPOCH reason=\"TEXT\"" (quotes and
 * controls in the text as '?').  Returns buf ("" when not approved).
 */
static const char *
log_run_approval(const struct run_report *rep, char *buf, size_t len)
{
	char why[256];
	size_t i;

	buf[0] = '\0';
	if (rep->approved_by[0] == '\0')
		return buf;
	snprintf(why, sizeof(why), "%s", rep->approval_reason);
	for (i = 0; why[i] != '\0'; i++)
		if ((unsigned char)why[i] < 0x20 || why[i] == '"' ||
		    why[i] == 0x7f)
			why[i] = '?';
	snprintf(buf, len, " approved_at=%lld expires=%lld reason=\"%s\"",
	    (long long)rep->approved_at, (long long)rep->approval_expires,
	    why);
	return buf;
}

/*
 * One line per run in state_dir/runs.log: time, status, counts,
 * approval id and who approved.
 */
static void
log_run(const struct run *r)
{
	const struct run_report *rep = &r->rep;
	char path[PATH_MAX], line[2048], when[32], extra[512];
	struct tm tm;
	int fd, n;

	if (path_fmt(path, sizeof(path), "%s/runs.log", r->cfg->state_dir)
	    == -1)
		return;
	gmtime_r(&rep->started, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line),
	    "%s run=%s status=%s persons=+%zu/~%zu/-%zu "
	    "groups=+%zu/~%zu/-%zu memberships=+%zu/~%zu/-%zu rejects=%zu"
	    " approval=%s%s%s%s%s%s%s%s\n",
	    when, rep->run_id, status_word(rep),
	    r->cs.count[0][0], r->cs.count[0][1], r->cs.count[0][2],
	    r->cs.count[1][0], r->cs.count[1][1], r->cs.count[1][2],
	    r->cs.count[2][0], r->cs.count[2][1], r->cs.count[2][2],
	    rep->rejects, rep->approval_id[0] ? rep->approval_id : "-",
	    rep->approved_by[0] ? " approved_by=" : "", rep->approved_by,
	    rep->file_name[0] && rep->status == RUN_COMPLETED ?
	    " file=" : "",
	    rep->status == RUN_COMPLETED ? rep->file_name : "",
	    rep->stage[0] ? " stage=" : "", rep->stage,
	    log_run_approval(rep, extra, sizeof(extra)));
	if (n < 0 || (size_t)n >= sizeof(line))
		n = (int)strlen(line);
	if ((fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
	    0600)) == -1) {
		log_warn("%s: %s", path, strerror(errno));
		return;
	}
	if (write(fd, line, (size_t)n) != n || fsync(fd) == -1)
		log_warn("%s: %s", path, strerror(errno));
	close(fd);
}

/* Keep the last `keep` lines of path (rewritten atomically). */
static int
trim_lines(const char *path, int keep)
{
	FILE *fp;
	char *buf = NULL, *p;
	size_t cap = 0, len = 0, n;
	long lines = 0;
	int rc = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return errno == ENOENT ? 0 : error_sys("%s", path);
	for (;;) {
		if (len + 65536 > cap) {
			char *nb = realloc(buf, cap = len + 65536 + cap);

			if (nb == NULL) {
				rc = error_sys("%s", path);
				break;
			}
			buf = nb;
		}
		if ((n = fread(buf + len, 1, cap - len, fp)) == 0)
			break;
		len += n;
	}
	if (rc == 0 && ferror(fp))
		rc = error_sys("%s", path);
	fclose(fp);
	if (rc == -1 || len == 0) {
		free(buf);
		return rc;
	}
	for (n = 0; n < len; n++)
		lines += buf[n] == '\n';
	lines += buf[len - 1] != '\n';
	for (p = buf; lines > keep && (p = memchr(p, '\n',
	    len - (size_t)(p - buf))) != NULL; lines--)
		p++;
	if (p != NULL && p > buf)
		rc = file_write_atomic(path, p, len - (size_t)(p - buf));
	free(buf);
	return rc;
}

/*
 * Retention: runs.log, runs/ and rejects/ keep the last state.keep
 * runs.  A failure is a warning.
 */
static void
retain(const struct config *cfg)
{
	char path[PATH_MAX];

	if (path_fmt(path, sizeof(path), "%s/runs.log", cfg->state_dir) == -1 ||
	    trim_lines(path, cfg->state.keep) == -1 ||
	    snapshot_prune(cfg->state_dir, "runs", cfg->state.keep) == -1 ||
	    snapshot_prune(cfg->state_dir, "rejects", cfg->state.keep) == -1)
		log_warn("retention: %s", error_last());
}

static void
remove_outgoing(struct run *r)
{
	/* Delivered and not committed (the commit failed): the next run
	 * makes it the snapshot (roll_forward). */
	if (r->full_tmp[0] != '\0' && !r->delivered)
		unlink(r->full_tmp);
	if (r->delta_tmp[0] != '\0')
		unlink(r->delta_tmp);
	if (r->window_tmp[0] != '\0')
		unlink(r->window_tmp);
}

static void
run_free(struct run *r)
{
	/* the jobs first: they use the rosters */
	(void)job_join(&r->load);
	(void)job_join(&r->index);
	rindex_discard(r->index.pi);
	if (r->rj.fp != NULL)
		fclose(r->rj.fp);
	if (r->rejects_tmp[0] != '\0')
		unlink(r->rejects_tmp);
	remove_outgoing(r);
	report_free(&r->rep);
	verdict_free(&r->v);
	changeset_free(&r->cs);
	roster_free(&r->nr);
	roster_free(&r->or);
}

/*
 * Two runs in one second get ids STAMP, STAMP-2, STAMP-3...: the id
 * names the run's rejects and summary files.
 */
static void
unique_run_id(const struct config *cfg, char *id, size_t len)
{
	char base[32], path[PATH_MAX];
	int n;

	snprintf(base, sizeof(base), "%s", id);
	for (n = 2; n < 1000; n++) {
		char rej[PATH_MAX];

		if (path_fmt(path, sizeof(path), "%s/runs/%s.json",
		    cfg->state_dir, id) == -1 ||
		    path_fmt(rej, sizeof(rej), "%s/rejects/%s.txt",
		    cfg->state_dir, id) == -1)
			return;
		if (access(path, F_OK) == -1 && access(rej, F_OK) == -1)
			return;
		snprintf(id, len, "%.20s-%d", base, n % 1000);
	}
}

static void
run_init(struct run *r, const struct config *cfg,
    const struct run_options *opts)
{
	struct tm tm;

	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->opts = opts;
	r->rep.cfg = cfg;
	r->rep.status = RUN_COMPLETED;
	r->rep.max_samples = opts->plan ? -1 : 0;
	r->rep.started = time(NULL);
	gmtime_r(&r->rep.started, &tm);
	strftime(r->rep.run_id, sizeof(r->rep.run_id), "%Y%m%dT%H%M%SZ",
	    &tm);
	unique_run_id(cfg, r->rep.run_id, sizeof(r->rep.run_id));
	if (!opts->plan)
		log_set_run(r->rep.run_id);
	owner_name(cfg, r->rep.owner, sizeof(r->rep.owner));
	owner_host(r->rep.host, sizeof(r->rep.host));
	roster_init(&r->nr);
	roster_init(&r->or);
}

/*
 * A run that stopped between delivery and commit: its file is at the
 * receiver, so it becomes the snapshot before anything else happens.
 * 0 or -1.
 */
static int
roll_forward(const struct config *cfg)
{
	int rc;

	if ((rc = snapshot_roll_forward(cfg->state_dir, cfg->history)) == -1)
		return error_prefix("committing the file the last run "
		    "delivered: ");
	if (rc == 0)
		return 0;
	log_warn("the last run stopped after its delivery and before its "
	    "commit: the file it delivered is now the snapshot");
	clear_pending(cfg);
	clear_approval(cfg);
	return 0;
}

/* Remove what a crashed run left in out/ and the state directory's
 * partial files. */
static void
clean_out(const struct config *cfg)
{
	snapshot_prune(cfg->state_dir, "out", 0);
	(void)file_clean_temps(cfg->state_dir);
}

/*
 * With a cumulative profile, a run that delivered and did not commit
 * may have changed the receiver: the next run delivers even when the
 * export equals the snapshot.  1 if so, 0 if not, -1 on error.
 */
static int
cumulative_owed(struct run *r)
{
	int rc;

	if (!r->cfg->output.cumulative)
		return 0;
	if ((rc = journal_tried(r->cfg)) == 1)
		log_info("the export matches the snapshot, but a run "
		    "delivered since without committing: delivering again");
	return rc;
}

/*
 * The stages of the nightly run in order.  Returns 0 when delivered
 * (or nothing to do), 1 when blocked, -1 when failed.
 */
static int
run_stages(struct run *r)
{
	int rc;

	if (stage_read(r, !r->opts->plan) == -1 || stage_diff(r) == -1 ||
	    stage_hold(r) == -1)
		return -1;
	if (r->have_snapshot && r->cs.n[0] + r->cs.n[1] + r->cs.n[2] == 0 &&
	    (rc = cumulative_owed(r)) <= 0) {
		if (rc == -1)
			return fail(r, ST_DIFF);
		r->rep.nothing_to_do = 1;
		log_info("nothing to do: the export matches the snapshot");
		if (!r->opts->plan) {
			clear_pending(r->cfg);
			clear_approval(r->cfg);
			save_sizes(r);
		}
		return 0;
	}
	if ((rc = stage_safety(r)) != 0 || r->opts->plan)
		return rc;
	if (stage_write(r) == -1 || stage_deliver(r) == -1 ||
	    stage_commit(r) == -1)
		return -1;
	return 0;
}

static void
print_plan(struct run *r)
{
	char *text;

	r->rep.finished = time(NULL);
	if ((text = report_text(&r->rep)) != NULL) {
		fputs(text, stdout);
		free(text);
	}
}

/* What a blocked run prints: the reason, the id, where and how to
 * approve it. */
static void
print_blocked(const struct run_report *rep)
{
	char *cmd = report_approve_command(rep);

	printf("blocked: %s\napproval id: %s\napprove on %s with: %s\n",
	    rep->reason, rep->approval_id, rep->host,
	    cmd != NULL ? cmd : error_last());
	free(cmd);
}

/*
 * The run and plan commands.  Returns the exit code: 0 delivered or
 * nothing to do, 1 failed, 3 blocked (plan: would be blocked), 4 when
 * another run holds the lock.
 */
int
run_main(const struct config *cfg, const struct run_options *opts)
{
	struct run r;
	int lock = -1, rc, rolled = 0;
	struct timespec t0;

	run_init(&r, cfg, opts);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!opts->plan) {
		lock = snapshot_lock(cfg->state_dir);
		if (lock == -2) {
			log_error("%s", error_last());
			run_free(&r);
			return EXIT_LOCKED;
		}
		if (lock == -1) {
			log_error("%s", error_last());
			run_free(&r);
			return EXIT_FAILED;
		}
		if (opts->approve != NULL &&
		    approval_is_pending(cfg, opts->approve) == -1) {
			log_error("%s", error_last());
			run_free(&r);
			snapshot_unlock(lock);
			return EXIT_USAGE;
		}
		/* A roll forward that fails is this run failing in commit
		 * (logged, summarised, mailed); out/ keeps its file. */
		if ((rolled = roll_forward(cfg)) == -1)
			fail(&r, ST_COMMIT);
		else
			clean_out(cfg);
		if (cfg->mail.enabled && mail_flush_spool(cfg) == -1)
			log_warn("%s (sending the spool)", mail_error());
	}
	rc = rolled == -1 ? -1 : run_stages(&r);
	r.rep.finished = time(NULL);
	if (opts->plan) {
		print_plan(&r);
		rc = rc == -1 ? EXIT_FAILED : rc == 1 ? EXIT_BLOCKED : EXIT_OK;
		if (r.rep.status == RUN_FAILED)
			log_error("%s: %s", r.rep.stage, r.rep.error);
		run_free(&r);
		return rc;
	}
	if (rc == -1)
		log_error("failed in %s: %s", r.rep.stage, r.rep.error);
	log_run(&r);
	if (report_write_json(&r.rep) == -1)
		log_warn("%s", error_last());
	retain(cfg);
	if (monitor_write_metrics(cfg, &r.rep) == -1)
		log_warn("metrics: %s", error_last());
	if (rc == 0 && monitor_heartbeat(cfg) == -1)
		log_warn("%s", error_last());
	if (cfg->mail.enabled) {
		struct timespec tm;

		clock_gettime(CLOCK_MONOTONIC, &tm);
		if (mail_report(cfg, &r.rep) == -1)
			log_warn("%s", mail_error());
		r.rep.seconds[ST_MAIL] = elapsed(&tm);
	}
	if (rc == 0 && !r.rep.nothing_to_do && log_verbosity > 0)
		printf("delivered: %s\nsnapshot: %s/snapshot\nrun log: "
		    "%s/runs.log\n", r.rep.remote_path, cfg->state_dir,
		    cfg->state_dir);
	else if (rc == 1)
		print_blocked(&r.rep);
	run_free(&r);
	snapshot_unlock(lock);
	return rc == -1 ? EXIT_FAILED : rc == 1 ? EXIT_BLOCKED : EXIT_OK;
}

/* Copy the file at src to the open fd (standard output, a device, a
 * FIFO).  0 or -1 (error set). */
static int
copy_to_fd(const char *src, int fd, const char *dst)
{
	char buf[65536];
	ssize_t n;
	int in;

	if ((in = open(src, O_RDONLY | O_CLOEXEC)) == -1)
		return error_sys("%s", src);
	while ((n = read(in, buf, sizeof(buf))) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1 || fd_write(fd, buf, (size_t)n) == -1) {
			error_sys("%s", n == -1 ? src : dst);
			close(in);
			return -1;
		}
	}
	close(in);
	return 0;
}

/*
 * Put the finished file tmp where export -o path asks: standard output
 * for NULL or "-"; a device or FIFO is written straight to; a symbolic
 * link is followed; only a regular file (or none) is replaced, by a
 * rename.  0 or -1 (error set).
 */
static int
export_put(const char *tmp, const char *path)
{
	char target[PATH_MAX];
	struct stat st;
	int fd, rc;

	if (path == NULL || strcmp(path, "-") == 0)
		return copy_to_fd(tmp, STDOUT_FILENO, "standard output");
	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
		if (S_ISDIR(st.st_mode))
			return error_set("%s: is a directory", path);
		if ((fd = open(path, O_WRONLY | O_CLOEXEC)) == -1)
			return error_sys("%s", path);
		rc = copy_to_fd(tmp, fd, path);
		if (close(fd) == -1 && rc == 0)
			rc = error_sys("%s", path);
		return rc;
	}
	if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
		if (realpath(path, target) == NULL)
			return error_sys("%s: a symbolic link to nothing is "
			    "refused", path);
		path = target;
	}
	return file_copy_atomic(tmp, path, 0600, NULL);
}

/*
 * The export command: tonight's export as a full IMS file, written
 * aside and then put at path (export_put).  Touches no state.  Returns
 * an exit code.
 */
int
run_export(const struct config *cfg, const char *path)
{
	struct roster nr;
	struct rejects rj;
	struct ims_options o;
	char tmp[PATH_MAX];
	const char *t = getenv("TMPDIR");
	const char *pfile, *gfile, *mfile;
	size_t altered = 0;
	int rc = EXIT_FAILED, fd;

	roster_init(&nr);
	memset(&rj, 0, sizeof(rj));
	rj.fp = stderr;
	if (path_fmt(tmp, sizeof(tmp), "%s/sisfeed-export.XXXXXX",
	    t != NULL && *t ? t : "/tmp") == -1) {
		log_error("%s", error_last());
		return EXIT_FAILED;
	}
	if ((fd = mkstemp(tmp)) == -1) {
		log_error("%s: %s", tmp, strerror(errno));
		return EXIT_FAILED;
	}
	close(fd);
	ims_options_of(cfg, &o, 0);
	source_files(cfg, &pfile, &gfile, &mfile);
	/* as a run writes it: what the profile's receiver cannot take is
	 * rejected first */
	if (read_export(cfg, &nr, &rj) == -1 ||
	    ims_screen(&o, &nr, &rj, pfile, gfile, mfile, &altered) == -1 ||
	    ims_write_full(tmp, &nr, &o) == -1 || export_put(tmp, path) == -1) {
		log_error("%s", error_last());
		goto out;
	}
	if (path == NULL || strcmp(path, "-") == 0) {
		rc = EXIT_OK;
		goto out;
	}
	log_info("wrote %s: %zu persons, %zu groups, %zu memberships, "
	    "%zu rejected", path, nr.npersons, nr.ngroups, nr.nmembers,
	    rj.count);
	rc = EXIT_OK;
out:
	unlink(tmp);
	roster_free(&nr);
	return rc;
}

/*
 * check: read the export as a run would (headers against the column
 * map, the OneRoster manifest and version, every record), so that a
 * wrong mapping fails at install time.  Prints one line.  0 or -1.
 */
static int
check_export(const struct config *cfg)
{
	struct roster r;
	struct rejects rj;
	int rc;

	roster_init(&r);
	memset(&rj, 0, sizeof(rj));
	if ((rc = read_export(cfg, &r, &rj)) == -1)
		printf("FAIL source read: %s\n", error_last());
	else
		printf("ok   source read: %zu persons, %zu groups, %zu "
		    "memberships; %zu of %zu records rejected, %zu notes, "
		    "%zu dependents\n", r.npersons, r.ngroups, r.nmembers,
		    rj.count, rj.records, rj.notes, rj.dependents);
	roster_free(&r);
	return rc;
}

/*
 * The check command: the config (already loaded), the state directory,
 * the source files and reading the export, the SFTP login and remote
 * directory, and with mail a test message.  One line per check.
 * Returns an exit code.
 */
int
run_check(const struct config *cfg, int mail)
{
	const char *files[4];
	size_t i, n = 0;
	int bad = 0, lock;

	printf("ok   config %s\n", cfg->path);
	if ((lock = snapshot_lock(cfg->state_dir)) < 0) {
		printf("FAIL state directory: %s\n", error_last());
		bad++;
	} else {
		printf("ok   state directory %s\n", cfg->state_dir);
		snapshot_unlock(lock);
	}
	if (cfg->source.format == SOURCE_CSV) {
		files[n++] = cfg->source.persons;
		files[n++] = cfg->source.groups;
		files[n++] = cfg->source.memberships;
	} else if (cfg->source.format == SOURCE_ONEROSTER)
		files[n++] = cfg->source.dir;
	else
		files[n++] = cfg->source.file;
	for (i = 0; i < n; i++) {
		if (files[i] != NULL && access(files[i], R_OK) == 0)
			printf("ok   source %s\n", files[i]);
		else {
			printf("FAIL source %s: %s\n", files[i] ? files[i] :
			    "(unset)", strerror(errno));
			bad++;
		}
	}
	if (check_export(cfg) == -1)
		bad++;
	if (cfg->delivery.dir != NULL) {
		if (access(cfg->delivery.dir, W_OK) == 0)
			printf("ok   delivery directory %s\n",
			    cfg->delivery.dir);
		else {
			printf("FAIL delivery directory %s: %s\n",
			    cfg->delivery.dir, strerror(errno));
			bad++;
		}
	} else if (cfg->delivery.sftp && sftp_check(cfg, stdout) == -1)
		bad++;
	if (mail) {
		if (!cfg->mail.enabled) {
			printf("FAIL mail: no mail section in %s\n", cfg->path);
			bad++;
		} else if (mail_test(cfg) == -1) {
			printf("FAIL %s\n", mail_error());
			bad++;
		} else
			printf("ok   mail: test message sent\n");
	}
	return bad ? EXIT_FAILED : EXIT_OK;
}

/* The output profile named s (as output.profile spells it), or -1. */
static int
profile_named(const char *s)
{
	if (strcmp(s, "generic") == 0)
		return PROFILE_GENERIC;
	if (strcmp(s, "moodle") == 0)
		return PROFILE_MOODLE;
	if (strcmp(s, "itslearning") == 0)
		return PROFILE_ITSLEARNING;
	return -1;
}

/* rj's problems: rejects, dangling references (notes, dependents). */
static size_t
problems_of(const struct rejects *rj)
{
	return rj->count + rj->notes + rj->dependents;
}

/*
 * The validate command: FILE is well-formed IMS Enterprise, keys are
 * unique, groups and memberships refer to known records, and it is
 * valid against the built-in DTD (a PIFU-IMS file: the PIFU-IMS XSD);
 * with profile (NULL: none), also what that output profile's receiver
 * would refuse or drop (ims_screen).  Problems are printed as
 * file:line: field: reason, violations as file:line: DTD: message.
 * Returns an exit code.
 */
int
run_validate(const char *path, const char *profile)
{
	struct ims_options o;
	struct roster r;
	struct rejects rj;
	size_t problems, byprofile = 0, ndtd = 0, altered;
	const char *what = "DTD";
	char extra[96] = "";
	int rc, prof = PROFILE_GENERIC;

	if (profile != NULL && (prof = profile_named(profile)) == -1) {
		log_error("validate --profile: '%.64s' is not a profile "
		    "(generic, moodle, itslearning)", profile);
		return EXIT_USAGE;
	}
	roster_init(&r);
	memset(&rj, 0, sizeof(rj));
	rj.fp = stdout;
	rc = ims_read(path, &r, &rj);
	if (rc == 0)
		rc = ims_validate_dtd(path, stdout, 50, &ndtd, &what);
	problems = problems_of(&rj);
	if (rc == 0 && profile != NULL) {
		memset(&o, 0, sizeof(o));
		o.profile = (enum output_profile)prof;
		o.nin = 1;	/* a personNIN is PIFU's own */
		rc = ims_screen(&o, &r, &rj, path, path, path, &altered);
		byprofile = problems_of(&rj) - problems;
		problems += byprofile;
		snprintf(extra, sizeof(extra), " (%zu by the %s profile's "
		    "rules)", byprofile, profile);
	}
	if (rc == -1)
		log_error("%s", error_last());
	else
		printf("%s: %zu persons, %zu groups, %zu memberships, "
		    "%zu problems%s, %zu %s violations\n", path, r.npersons,
		    r.ngroups, r.nmembers, problems, extra, ndtd, what);
	roster_free(&r);
	return rc == -1 || problems > 0 || ndtd > 0 ? EXIT_FAILED : EXIT_OK;
}

static void
print_change(const struct roster *or, const struct roster *nr, int t,
    const struct change *c)
{
	static const char mark[NOPS] = { '+', '~', '-' };
	const struct roster *ro = c->op == OP_DELETE ? or : nr;
	size_t i = c->op == OP_DELETE ? c->old : c->new;

	if (t == TYPE_PERSON)
		printf("%c person %s\n", mark[c->op], ro->persons[i].id);
	else if (t == TYPE_GROUP)
		printf("%c group %s\n", mark[c->op], ro->groups[i].id);
	else
		printf("%c membership %s %s %02d\n", mark[c->op],
		    ro->groups[ro->members[i].group].id,
		    ro->persons[ro->members[i].person].id,
		    ro->members[i].role);
}

/*
 * The diff command: the change set between two IMS files, one line per
 * change then the counts.  Returns 0 when they hold the same records,
 * 1 when they differ, 2 when a file cannot be read (like diff(1)).
 */
int
run_diff(const char *oldpath, const char *newpath)
{
	struct roster or, nr;
	struct rejects orj = { 0 }, nrj = { 0 };
	struct changeset cs;
	size_t i;
	int t, rc = EXIT_USAGE;		/* diff(1)'s "trouble" */

	roster_init(&or);
	roster_init(&nr);
	memset(&cs, 0, sizeof(cs));
	if (ims_read(oldpath, &or, &orj) == -1 ||
	    ims_read(newpath, &nr, &nrj) == -1 ||
	    diff_compute(&or, &nr, &cs) == -1) {
		log_error("%s", error_last());
		goto out;
	}
	/* Dangling or bad records are counted, not refused: the files
	 * compare as a reader of each keeps them. */
	if (orj.count + orj.notes + orj.dependents > 0)
		log_warn("%s: %zu dangling or bad records", oldpath,
		    orj.count + orj.notes + orj.dependents);
	if (nrj.count + nrj.notes + nrj.dependents > 0)
		log_warn("%s: %zu dangling or bad records", newpath,
		    nrj.count + nrj.notes + nrj.dependents);
	for (t = 0; t < NTYPES; t++)
		for (i = 0; i < cs.n[t]; i++)
			print_change(&or, &nr, t, &cs.c[t][i]);
	for (t = 0; t < NTYPES; t++)
		printf("%s: %zu inserts, %zu updates, %zu deletes\n",
		    type_name(t), cs.count[t][OP_INSERT],
		    cs.count[t][OP_UPDATE], cs.count[t][OP_DELETE]);
	rc = cs.n[0] + cs.n[1] + cs.n[2] == 0 ? EXIT_OK : EXIT_FAILED;	/* differ */
out:
	changeset_free(&cs);
	roster_free(&or);
	roster_free(&nr);
	return rc;
}
