/*
 * gen.c -- a deterministic generator of a generic-CSV SIS export of any
 * size, for the benchmark (bench/run-bench).
 *
 *   gen OUTDIR PERSONS GROUPS MEMBERSHIPS [--night2 CHURN_PERCENT]
 *       [--shape base|person|group|strings]
 *
 * writes OUTDIR/night1/{persons,groups,memberships}.csv in the columns of
 * etc/examples/sisfeed.yaml and, with --night2, OUTDIR/night2/ with the
 * churn applied: renames, status flips, leavers (with their memberships),
 * as many newcomers (taking over the leavers' class places), class moves
 * (a learner leaves a class, another joins it), membership state flips
 * and retitled classes.
 *
 * Every attribute of a record is a hash (splitmix64) of a fixed seed and
 * the record's index, so the two nights agree on every record the churn
 * does not touch, and a rerun writes the same bytes.
 *
 * Model: persons 0..NT-1 are teachers (4%), the rest students.  Group 0
 * is the district, then the schools (1/50 of the groups), then the
 * classes, each with a school as parent and a term.  Class c has one
 * teacher (a teaching assistant too in every fourth class) and k_c
 * learners: the students at positions s_c, s_c+1, ... s_c+k_c-1 (mod the
 * number of students), which makes the (group, person, role) triples
 * unique.  Keys are scrambled (a bijection of the index), so no file is
 * in key order.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define SEED		0x5157f33dULL
#define OUTBUF		(1U << 22)
/* Key numbers are idx * KEYMUL mod KEYSPACE: a bijection on the space. */
#define KEYSPACE	100000000ULL	/* 8 digits */
#define KEYMUL		61803399ULL	/* coprime with 10^8, scatters */

struct out {
	FILE		*fp;
	char		*buf;
	size_t		 len;
	const char	*path;
};

struct gen {
	uint64_t	 np;		/* persons */
	uint64_t	 nt;		/* of which teachers */
	uint64_t	 ns;		/* of which students */
	uint64_t	 ng;		/* groups */
	uint64_t	 nschools;
	uint64_t	 nclasses;
	uint64_t	 nm;		/* memberships */
	uint64_t	 learners;	/* learner memberships */
	uint64_t	 stride;	/* s_c = c * stride mod ns */
	double		 churn;		/* fraction, 0.02 for 2% */
	int		 night2;
	int		 shape;		/* enum shape */
	uint64_t	 per;		/* SHAPE_PERSON/GROUP: classes a student */
	uint64_t	 rem;		/* students with per + 1 */
};

/*
 * The data shapes (--shape): base is the shape above.  person: each
 * student in about per random classes of all the classes, memberships
 * written person by person, names with hyphens (Anna-Lena,
 * Müller-Lüdenscheidt); group: the same memberships written class by
 * class; strings: base's memberships, persons with a realistic string
 * mix (one to three UTF-8 given names, double family names, long
 * e-mail addresses at a school subdomain).
 */
enum shape { SHAPE_BASE, SHAPE_PERSON, SHAPE_GROUP, SHAPE_STRINGS };
static const char *const shape_names[] = { "base", "person", "group",
	"strings" };
#define MAXPER		60	/* classes a student, person and group */

/* Names: UTF-8, some with a comma or a quote (RFC 4180 quoting). */
static const char *const given[] = {
	"Ada", "Alan", "Grace", "Bjørn", "Zoë", "Wei", "María José", "Noah",
	"Emma", "Liam", "Olivia", "Lucas", "Mia", "Ethan", "Sofia", "Kenji",
	"Sophie", "Juliet", "Åsa", "José", "Chloé", "Søren", "Jürgen",
	"François", "Łukasz", "Þóra", "Siobhán", "Małgorzata", "İlkay",
	"Ngozi", "Yūki", "明", "Ana-Lucía", "Oğuz", "Dmitrij", "Hana",
	"Nils", "Fatima", "Mateo", "Aoife",
};
static const char *const given_slug[] = {
	"ada", "alan", "grace", "bjorn", "zoe", "wei", "mariajose", "noah",
	"emma", "liam", "olivia", "lucas", "mia", "ethan", "sofia", "kenji",
	"sophie", "juliet", "asa", "jose", "chloe", "soren", "jurgen",
	"francois", "lukasz", "thora", "siobhan", "malgorzata", "ilkay",
	"ngozi", "yuki", "ming", "analucia", "oguz", "dmitrij", "hana",
	"nils", "fatima", "mateo", "aoife",
};
static const char *const family[] = {
	"Lovelace", "Turing", "Hopper", "Åsen", "O'Connor", "García, Jr.",
	"Li", "Smith", "Jones", "Nakamura", "Dubois", "Okafor", "Müller",
	"Nguyễn", "Østergaard", "Kowalski", "Admin \"Ops\"", "van der Berg",
	"Ó Briain", "Żółkiewski", "Johansson", "Papadopoulos", "Haddad",
	"Silva", "Kim", "Brown, III", "Novák", "Yılmaz", "Rossi", "Andersen",
	"田中", "Moreau",
};
static const char *const family_slug[] = {
	"lovelace", "turing", "hopper", "asen", "oconnor", "garcia", "li",
	"smith", "jones", "nakamura", "dubois", "okafor", "muller", "nguyen",
	"ostergaard", "kowalski", "admin", "vanderberg", "obriain",
	"zolkiewski", "johansson", "papadopoulos", "haddad", "silva", "kim",
	"brown", "novak", "yilmaz", "rossi", "andersen", "tanaka", "moreau",
};
/* Class subjects: short code, long title; some with & and <. */
static const char *const subj_short[] = {
	"Math", "Science", "English", "History", "Art", "PE", "Music",
	"French", "German", "Spanish", "CS", "Biology", "Chemistry",
	"Physics", "Geography", "Drama",
};
static const char *const subj_long[] = {
	"Mathematics", "Science & Technology", "English language",
	"History <modern>", "Art & Design", "Physical education", "Music",
	"Français", "Deutsch", "Español", "Computing & <code>", "Biology",
	"Chemistry", "Physics & Astronomy", "Geography", "Drama \"Stage\"",
};
static const char *const towns[] = {
	"North", "South", "Östra", "Västra", "Zürich Road", "Saint-Étienne",
	"Ørsted", "Riverside", "Lakeside, East", "Hilltop", "Møllebakken",
	"Oakwood", "Ciudad Jardín", "Kōbe Street",
};
static const char *const status_true[] = { "1", "1", "1", "1", "yes",
	"true", "Y", "active" };
static const char *const status_false[] = { "0", "0", "no", "false" };

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static uint64_t
splitmix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* A hash of (what, i): what names the attribute. */
static uint64_t
h(uint64_t what, uint64_t i)
{
	return splitmix(SEED ^ splitmix(what * 0x100000001b3ULL + i));
}

/* A uniform double in [0, 1) from (what, i). */
static double
u01(uint64_t what, uint64_t i)
{
	return (double)(h(what, i) >> 11) * (1.0 / 9007199254740992.0);
}

static uint64_t
keynum(uint64_t i)
{
	return (i * KEYMUL) % KEYSPACE;
}

static void
die(const char *what, const char *path)
{
	fprintf(stderr, "gen: %s: %s: %s\n", path, what, strerror(errno));
	exit(1);
}

static void
out_open(struct out *o, const char *path)
{
	o->path = path;
	if ((o->fp = fopen(path, "w")) == NULL)
		die("open", path);
	if ((o->buf = malloc(OUTBUF)) == NULL)
		die("malloc", path);
	o->len = 0;
}

static void
out_flush(struct out *o)
{
	if (o->len > 0 && fwrite(o->buf, 1, o->len, o->fp) != o->len)
		die("write", o->path);
	o->len = 0;
}

static void
out_close(struct out *o)
{
	out_flush(o);
	if (fclose(o->fp) == EOF)
		die("close", o->path);
	free(o->buf);
}

/* Room for n more bytes (n is small: one field). */
static inline void
need(struct out *o, size_t n)
{
	if (o->len + n > OUTBUF)
		out_flush(o);
}

static inline void
put(struct out *o, const char *s, size_t n)
{
	need(o, n);
	memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static inline void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

static inline void
putc_(struct out *o, char c)
{
	need(o, 1);
	o->buf[o->len++] = c;
}

/* An unsigned number, zero-padded to width digits (0: no padding). */
static inline void
putnum(struct out *o, uint64_t v, int width)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n < width)
		tmp[n++] = '0';
	need(o, (size_t)n);
	while (n > 0)
		o->buf[o->len++] = tmp[--n];
}

/* A CSV field: quoted (RFC 4180) when it holds , " CR or LF. */
static void
putfield(struct out *o, const char *s)
{
	const char *p;

	if (strpbrk(s, ",\"\r\n") == NULL) {
		puts_(o, s);
		return;
	}
	putc_(o, '"');
	for (p = s; *p != '\0'; p++) {
		if (*p == '"')
			putc_(o, '"');
		putc_(o, *p);
	}
	putc_(o, '"');
}

/* ---- keys ----------------------------------------------------------- */

/* Person index i: T + 8 digits for a teacher, S + 8 digits otherwise.
 * Newcomers (night 2) have indexes np and up. */
static void
put_person_key(struct out *o, const struct gen *g, uint64_t i)
{
	putc_(o, i < g->nt ? 'T' : 'S');
	putnum(o, keynum(i), 8);
}

static void
put_group_key(struct out *o, const struct gen *g, uint64_t gi)
{
	if (gi == 0)
		puts_(o, "DIST");
	else if (gi <= g->nschools) {
		puts_(o, "SCH-");
		putnum(o, gi, 5);
	} else {
		puts_(o, "CL-");
		putnum(o, keynum(gi), 8);
	}
}

/* ---- churn decisions (night 2) ---------------------------------------- */

enum pchurn { PC_NONE, PC_RENAME, PC_FLIP, PC_LEAVE };

/*
 * What night 2 does to person i: of the churn share, 40% renames, 20%
 * status flips, 40% leavers (students only); as many newcomers as
 * leavers come in.
 */
static enum pchurn
person_churn(const struct gen *g, uint64_t i)
{
	double u;

	if (!g->night2 || i >= g->np)
		return PC_NONE;
	u = u01(101, i) / g->churn;
	if (u < 0.4)
		return PC_RENAME;
	if (u < 0.6)
		return PC_FLIP;
	if (u < 1.0 && i >= g->nt)
		return PC_LEAVE;
	return PC_NONE;
}

/* The person at student position pos in night 2: a leaver's places go
 * to the newcomer np + i. */
static uint64_t
student_at(const struct gen *g, uint64_t pos)
{
	uint64_t i = g->nt + pos % g->ns;

	if (person_churn(g, i) == PC_LEAVE)
		return g->np + i;
	return i;
}

/* ---- persons ------------------------------------------------------- */

/* ---- names of the person, group and strings shapes (issue 13) ------- */

static const char *const given_h[] = {
	"Anna-Lena", "Jean-Pierre", "Hans-Jürgen", "Marie-Thérèse",
	"Lise-Lotte", "Zoë-Ann", "Jan-Ove", "Éva-Kinga", "Ana-Sofía",
	"Per-Åke",
};
static const char *const given_h_slug[] = {
	"annalena", "jeanpierre", "hansjurgen", "marietherese", "liselotte",
	"zoeann", "janove", "evakinga", "anasofia", "perake",
};
static const char *const family_h[] = {
	"Müller-Lüdenscheidt", "García-Márquez", "Smith-Jones", "Łęcka-Żak",
	"Ødegård-Hansen", "Ní Bhriain-Ó Sé", "Lindqvist-Åberg",
	"Nguyễn-Trần", "Dupont-Lefèvre", "Öztürk-Çelik",
};
static const char *const family_h_slug[] = {
	"mullerludenscheidt", "garciamarquez", "smithjones", "leckazak",
	"odegardhansen", "nibhriainose", "lindqvistaberg", "nguyentran",
	"dupontlefevre", "ozturkcelik",
};

/* A name part from seed: plain (given, family) or hyphenated (the _h
 * tables) in pct_h percent of the cases; its slug into *slug. */
static const char *
name_part(uint64_t seed, int family_name, int pct_h, const char **slug)
{
	size_t k;

	if ((int)(seed % 100) < pct_h) {
		k = (seed / 100) % NELEM(given_h);
		*slug = family_name ? family_h_slug[k] : given_h_slug[k];
		return family_name ? family_h[k] : given_h[k];
	}
	if (family_name) {
		k = (seed / 100) % NELEM(family);
		*slug = family_slug[k];
		return family[k];
	}
	k = (seed / 100) % NELEM(given);
	*slug = given_slug[k];
	return given[k];
}

/*
 * Person and group shapes: a given name (25% hyphenated), a family name
 * (20% hyphenated).  Strings shape: one to three given names, a family
 * name, in 30% a double one ("Kim-Rossi"), and a long e-mail address:
 * every given name, every family name, a number, a school subdomain.
 * A rename picks another family name; username and e-mail keep night 1's.
 */
static void
write_person_rich(struct out *o, const struct gen *g, uint64_t i,
    uint64_t base)
{
	const char *gv[3], *gs[3], *fv[2], *fs[2], *ov[2], *os[2];
	int strings = g->shape == SHAPE_STRINGS;
	int ng = 1, nf = 1, k;
	uint64_t fseed = h(2, base);
	char buf[512];
	size_t len;

	if (strings) {
		ng = 1 + (int)(h(6, base) % 3);
		nf = h(7, base) % 10 < 3 ? 2 : 1;
	}
	for (k = 0; k < ng; k++)
		gv[k] = name_part(h(1, base * 4 + (uint64_t)k), 0,
		    strings ? 10 : 25, &gs[k]);
	for (k = 0; k < nf; k++)
		ov[k] = name_part(h(2, base * 4 + (uint64_t)k), 1,
		    strings ? 10 : 20, &os[k]);
	for (k = 0; k < nf; k++) {
		fv[k] = ov[k];
		fs[k] = os[k];
	}
	if (person_churn(g, i) == PC_RENAME)
		fv[0] = name_part(fseed ^ h(5, i), 1, 20, &fs[0]);
	put_person_key(o, g, i);
	putc_(o, ',');
	puts_(o, gs[0]);
	putc_(o, '.');
	puts_(o, os[0]);
	putnum(o, keynum(i) % 100000, 0);
	putc_(o, ',');
	for (len = 0, k = 0; k < ng; k++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
		    k > 0 ? " " : "", gv[k]);
	putfield(o, buf);
	putc_(o, ',');
	for (len = 0, k = 0; k < nf; k++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s",
		    k > 0 ? "-" : "", fv[k]);
	putfield(o, buf);
	putc_(o, ',');
	for (k = 0; k < ng; k++) {
		puts_(o, gs[k]);
		putc_(o, '.');
	}
	for (k = 0; k < nf; k++) {
		if (k > 0)
			putc_(o, '-');
		puts_(o, os[k]);
	}
	putnum(o, keynum(i) % 100000, 0);
	if (!strings)
		puts_(o, i < g->nt ? "@example.org," :
		    "@students.example.org,");
	else {
		puts_(o, i < g->nt ? "@staff.school-" : "@students.school-");
		putnum(o, 1 + h(8, base) % (g->nschools), 4);
		puts_(o, ".bench-district.k12.example.org,");
	}
}

static void
write_person_base(struct out *o, const struct gen *g, uint64_t i,
    uint64_t base)
{
	enum pchurn pc = person_churn(g, i);
	size_t gi = h(1, base) % NELEM(given);
	size_t fi = h(2, base) % NELEM(family);
	size_t fo = fi;

	if (pc == PC_RENAME)
		fi = (fi + 1 + h(5, i) % (NELEM(family) - 1)) % NELEM(family);
	put_person_key(o, g, i);
	putc_(o, ',');
	/* username and email keep the night-1 family name */
	puts_(o, given_slug[gi]);
	putc_(o, '.');
	puts_(o, family_slug[fo]);
	putnum(o, keynum(i) % 100000, 0);
	putc_(o, ',');
	putfield(o, given[gi]);
	putc_(o, ',');
	putfield(o, family[fi]);
	putc_(o, ',');
	puts_(o, given_slug[gi]);
	putc_(o, '.');
	puts_(o, family_slug[fo]);
	putnum(o, keynum(i) % 100000, 0);
	puts_(o, i < g->nt ? "@example.org," : "@students.example.org,");
}

/* The columns after the e-mail: status and role. */
static void
write_person_tail(struct out *o, const struct gen *g, uint64_t i,
    uint64_t base)
{
	int active = u01(3, base) >= 0.01;
	uint64_t hs = h(4, base);

	if (person_churn(g, i) == PC_FLIP)
		active = !active;
	puts_(o, active ? status_true[hs % NELEM(status_true)] :
	    status_false[hs % NELEM(status_false)]);
	putc_(o, ',');
	if (i < g->nt)
		puts_(o, hs % 10 == 0 ? "Staff" : "Faculty");
	else
		puts_(o, "Student");
	putc_(o, '\n');
}

static void
write_person(struct out *o, const struct gen *g, uint64_t i, uint64_t base)
{
	if (g->shape == SHAPE_BASE)
		write_person_base(o, g, i, base);
	else
		write_person_rich(o, g, i, base);
	write_person_tail(o, g, i, base);
}

static void
gen_persons(const struct gen *g, const char *path)
{
	struct out o;
	uint64_t i;

	out_open(&o, path);
	puts_(&o, "student_id,username,first_name,last_name,email,active,"
	    "profile\n");
	for (i = 0; i < g->np; i++)
		if (person_churn(g, i) != PC_LEAVE)
			write_person(&o, g, i, i);
	/* newcomers: np + i for each leaver i, with fresh attributes */
	if (g->night2)
		for (i = g->nt; i < g->np; i++)
			if (person_churn(g, i) == PC_LEAVE)
				write_person(&o, g, g->np + i, g->np + i);
	out_close(&o);
}

/* ---- groups -------------------------------------------------------- */

static void
gen_groups(const struct gen *g, const char *path)
{
	struct out o;
	uint64_t gi;

	out_open(&o, path);
	puts_(&o, "group_id,kind,name,title,parent_id,term\n");
	puts_(&o, "DIST,district,Bench District,"
	    "\"Bench School District, all schools\",,\n");
	for (gi = 1; gi <= g->nschools; gi++) {
		const char *t = towns[h(20, gi) % NELEM(towns)];

		put_group_key(&o, g, gi);
		puts_(&o, ",school,School ");
		putnum(&o, gi, 0);
		putc_(&o, ',');
		/* "Östra School No. 12", quoted when the town has a comma */
		if (strchr(t, ',') != NULL) {
			puts_(&o, "\"");
			puts_(&o, t);
			puts_(&o, " School No. ");
			putnum(&o, gi, 0);
			puts_(&o, "\"");
		} else {
			puts_(&o, t);
			puts_(&o, " School No. ");
			putnum(&o, gi, 0);
		}
		puts_(&o, ",DIST,\n");
	}
	for (gi = g->nschools + 1; gi < g->ng; gi++) {
		uint64_t c = gi - g->nschools - 1;
		size_t s = h(21, gi) % NELEM(subj_short);
		int grade = (int)(h(22, gi) % 12) + 1;
		char sect = (char)('A' + h(23, gi) % 6);
		int retitled = g->night2 && u01(24, gi) < g->churn / 2;
		char title[160];

		put_group_key(&o, g, gi);
		puts_(&o, ",class,");
		puts_(&o, subj_short[s]);
		putc_(&o, ' ');
		putnum(&o, (uint64_t)grade, 0);
		putc_(&o, sect);
		putc_(&o, ',');
		snprintf(title, sizeof(title), "%s, grade %d (%c)%s",
		    subj_long[s], grade, sect, retitled ? " – new" : "");
		putfield(&o, title);
		putc_(&o, ',');
		put_group_key(&o, g, 1 + c % g->nschools);
		puts_(&o, h(25, gi) % 8 == 0 ? ",2026/27 S1\n" : ",2026/27\n");
	}
	out_close(&o);
}

/* ---- memberships --------------------------------------------------- */

static void
put_member(struct out *o, const struct gen *g, uint64_t gi, uint64_t pi,
    const char *role, int active)
{
	put_group_key(o, g, gi);
	putc_(o, ',');
	put_person_key(o, g, pi);
	putc_(o, ',');
	puts_(o, role);
	puts_(o, active ? ",active\n" : ",inactive\n");
}

/* Teacher memberships of class c: 1, or 2 in every fourth class. */
static uint64_t
teachers_of(const struct gen *g, uint64_t c)
{
	return g->nt >= 2 && c % 4 == 0 ? 2 : 1;
}

/* ---- memberships of the person and group shapes (issue 13) --------- */

/* How many classes student i (nt <= i < np) is in. */
static uint64_t
classes_of(const struct gen *g, uint64_t i)
{
	return g->per + (i - g->nt < g->rem);
}

static int
in_list(const uint64_t *v, uint64_t n, uint64_t c)
{
	uint64_t k;

	for (k = 0; k < n; k++)
		if (v[k] == c)
			return 1;
	return 0;
}

/*
 * The classes of student i into cls (class numbers, 0..nclasses-1, all
 * distinct), their count returned: random classes of all of them.  In
 * night 2 a place moves to another class with probability churn / 2.
 */
static uint64_t
student_classes(const struct gen *g, uint64_t i, uint64_t *cls)
{
	uint64_t n = classes_of(g, i), j, t, c;

	for (j = 0; j < n; j++) {
		t = 0;
		do
			c = h(40, i * 4096 + j * 64 + t++) % g->nclasses;
		while (in_list(cls, j, c));
		cls[j] = c;
	}
	if (!g->night2)
		return n;
	for (j = 0; j < n; j++) {
		if (u01(41, i * 4096 + j) >= g->churn / 2)
			continue;
		t = 0;
		do
			c = h(42, i * 4096 + j * 64 + t++) % g->nclasses;
		while (in_list(cls, n, c));
		cls[j] = c;
	}
	return n;
}

/* The teacher and teaching assistant of class c (none: UINT64_MAX). */
static uint64_t
class_teacher(const struct gen *g, uint64_t c)
{
	return c % g->nt;
}

static uint64_t
class_ta(const struct gen *g, uint64_t c)
{
	return teachers_of(g, c) == 2 ? (c + g->nt / 2) % g->nt : UINT64_MAX;
}

/* Student slot (i, j): role and state; the key is person pi's. */
static void
put_student(struct out *o, const struct gen *g, uint64_t c, uint64_t i,
    uint64_t j, uint64_t pi)
{
	uint64_t sl = i * 4096 + j;
	int active = u01(30, sl) >= 0.005;

	if (g->night2 && u01(32, sl) < g->churn / 10)
		active = !active;
	put_member(o, g, g->nschools + 1 + c, pi,
	    h(33, sl) % 3 == 0 ? "learner" : "student", active);
}

/* Person order: each teacher's classes, then each student's (leavers'
 * places go to the newcomers, written last). */
static void
gen_members_person(const struct gen *g, struct out *o)
{
	uint64_t cls[MAXPER], t, c, i, j, n;

	for (t = 0; t < g->nt; t++) {
		for (c = t; c < g->nclasses; c += g->nt)
			put_member(o, g, g->nschools + 1 + c, t, "teacher", 1);
		/* class_ta(c) == t: c = t - nt/2 (mod nt) */
		for (c = (t + g->nt - g->nt / 2) % g->nt; c < g->nclasses;
		    c += g->nt)
			if (class_ta(g, c) == t)
				put_member(o, g, g->nschools + 1 + c, t, "ta",
				    1);
	}
	for (i = g->nt; i < g->np; i++) {
		if (person_churn(g, i) == PC_LEAVE)
			continue;
		n = student_classes(g, i, cls);
		for (j = 0; j < n; j++)
			put_student(o, g, cls[j], i, j, i);
	}
	if (!g->night2)
		return;
	for (i = g->nt; i < g->np; i++) {
		if (person_churn(g, i) != PC_LEAVE)
			continue;
		n = student_classes(g, i, cls);
		for (j = 0; j < n; j++)
			put_student(o, g, cls[j], i, j, g->np + i);
	}
}

/* Group order: the same memberships class by class (students in person
 * index order, so not in key order). */
static void
gen_members_group(const struct gen *g, struct out *o)
{
	uint64_t cls[MAXPER], *start, *slot, c, i, j, n, k, total = 0;

	if ((start = calloc(g->nclasses + 1, sizeof(*start))) == NULL)
		die("calloc", o->path);
	for (i = g->nt; i < g->np; i++) {
		n = student_classes(g, i, cls);
		for (j = 0; j < n; j++)
			start[cls[j] + 1]++;
		total += n;
	}
	for (c = 0; c < g->nclasses; c++)
		start[c + 1] += start[c];
	if ((slot = malloc((total + 1) * sizeof(*slot))) == NULL)
		die("malloc", o->path);
	for (i = g->nt; i < g->np; i++) {
		n = student_classes(g, i, cls);
		for (j = 0; j < n; j++)
			slot[start[cls[j]]++] = i * 4096 + j;
	}
	for (c = 0, k = 0; c < g->nclasses; c++) {
		put_member(o, g, g->nschools + 1 + c, class_teacher(g, c),
		    "teacher", 1);
		if (class_ta(g, c) != UINT64_MAX)
			put_member(o, g, g->nschools + 1 + c,
			    class_ta(g, c), "ta", 1);
		/* start[c] is now the end of class c */
		for (; k < start[c]; k++) {
			i = slot[k] / 4096;
			j = slot[k] % 4096;
			put_student(o, g, c, i, j,
			    person_churn(g, i) == PC_LEAVE ? g->np + i : i);
		}
	}
	free(slot);
	free(start);
}

static void
gen_members(const struct gen *g, const char *path)
{
	struct out o;
	uint64_t c, j, per, rem;

	out_open(&o, path);
	puts_(&o, "group_id,person_id,role,state\n");
	if (g->shape == SHAPE_PERSON || g->shape == SHAPE_GROUP) {
		if (g->shape == SHAPE_PERSON)
			gen_members_person(g, &o);
		else
			gen_members_group(g, &o);
		out_close(&o);
		return;
	}
	per = g->learners / g->nclasses;
	rem = g->learners % g->nclasses;
	for (c = 0; c < g->nclasses; c++) {
		uint64_t gi = g->nschools + 1 + c;
		uint64_t k = per + (c < rem), s = (c * g->stride) % g->ns;
		uint64_t moved = 0;

		put_member(&o, g, gi, c % g->nt, "teacher", 1);
		if (teachers_of(g, c) == 2)
			put_member(&o, g, gi, (c * 7 + 1) % g->nt, "ta", 1);
		for (j = 0; j < k; j++) {
			uint64_t pos = s + j, pi;
			int active = u01(30, gi * 1000003 + j) >= 0.005;

			/* class move: the place goes to a student after
			 * the class's window (never one already in it) */
			if (g->night2 && k + moved < g->ns &&
			    u01(31, gi * 1000003 + j) < g->churn / 2)
				pos = s + k + moved++;
			pi = g->night2 ? student_at(g, pos) :
			    g->nt + pos % g->ns;
			if (g->night2 && u01(32, gi * 1000003 + j) <
			    g->churn / 10)
				active = !active;
			put_member(&o, g, gi, pi,
			    h(33, gi * 1000003 + j) % 3 == 0 ? "learner" :
			    "student", active);
		}
	}
	out_close(&o);
}

/* ---- main ---------------------------------------------------------- */

static void
night(struct gen *g, const char *outdir, int n2)
{
	char dir[4096], path[4200];

	g->night2 = n2;
	snprintf(dir, sizeof(dir), "%s/night%d", outdir, n2 ? 2 : 1);
	if (mkdir(dir, 0755) == -1 && errno != EEXIST)
		die("mkdir", dir);
	snprintf(path, sizeof(path), "%s/persons.csv", dir);
	gen_persons(g, path);
	snprintf(path, sizeof(path), "%s/groups.csv", dir);
	gen_groups(g, path);
	snprintf(path, sizeof(path), "%s/memberships.csv", dir);
	gen_members(g, path);
}

static uint64_t
number(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0') {
		fprintf(stderr, "gen: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: gen OUTDIR PERSONS GROUPS MEMBERSHIPS "
	    "[--night2 CHURN_PERCENT] [--shape base|person|group|strings]\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct gen g;
	uint64_t nteach, c;
	int a;

	memset(&g, 0, sizeof(g));
	if (argc < 5)
		usage();
	for (a = 5; a < argc; a += 2) {
		char *end;

		if (a + 1 >= argc)
			usage();
		if (strcmp(argv[a], "--shape") == 0) {
			for (g.shape = 0; g.shape < (int)NELEM(shape_names);
			    g.shape++)
				if (strcmp(argv[a + 1],
				    shape_names[g.shape]) == 0)
					break;
			if (g.shape == (int)NELEM(shape_names))
				usage();
			continue;
		}
		if (strcmp(argv[a], "--night2") != 0)
			usage();
		g.churn = strtod(argv[a + 1], &end) / 100.0;
		if (end == argv[a + 1] || *end != '\0' || g.churn <= 0 ||
		    g.churn > 1) {
			fprintf(stderr, "gen: churn must be in (0, 100]\n");
			exit(2);
		}
	}
	g.np = number(argv[2], "persons");
	g.ng = number(argv[3], "groups");
	g.nm = number(argv[4], "memberships");
	if (g.np < 4 || g.ng < 3 || g.np * 2 >= KEYSPACE ||
	    g.ng >= KEYSPACE) {
		fprintf(stderr, "gen: need 4 <= persons < %llu, "
		    "3 <= groups < %llu\n", KEYSPACE / 2, KEYSPACE);
		exit(2);
	}
	g.nt = g.np / 25 > 0 ? g.np / 25 : 1;
	g.ns = g.np - g.nt;
	g.nschools = g.ng / 50 > 0 ? g.ng / 50 : 1;
	g.nclasses = g.ng - 1 - g.nschools;
	for (nteach = 0, c = 0; c < g.nclasses; c++)
		nteach += teachers_of(&g, c);
	if (g.nm < nteach) {
		fprintf(stderr, "gen: need at least %llu memberships "
		    "(the classes' teachers)\n", (unsigned long long)nteach);
		exit(2);
	}
	g.learners = g.nm - nteach;
	/* every learner place distinct within a class, room for moves */
	if (g.learners / g.nclasses + 1 >= g.ns / 2) {
		fprintf(stderr, "gen: too many memberships per class for "
		    "%llu students\n", (unsigned long long)g.ns);
		exit(2);
	}
	/* classes tile the students: each student in ~learners/ns classes */
	g.stride = g.learners / g.nclasses + 1;
	/* person and group shapes: each student in per or per + 1 random
	 * classes */
	g.per = g.learners / g.ns;
	g.rem = g.learners % g.ns;
	if ((g.shape == SHAPE_PERSON || g.shape == SHAPE_GROUP) &&
	    (g.per + 1 > MAXPER || g.per + 1 > g.nclasses / 2)) {
		fprintf(stderr, "gen: too many memberships per student\n");
		exit(2);
	}
	if (mkdir(argv[1], 0755) == -1 && errno != EEXIST)
		die("mkdir", argv[1]);
	night(&g, argv[1], 0);
	if (g.churn > 0)
		night(&g, argv[1], 1);
	return 0;
}
