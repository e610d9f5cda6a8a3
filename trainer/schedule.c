/* cull-train's learning-rate schedules: constant, step, multistep, cosine, one-cycle; warmup. */
#include "train.h"
#include "io.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void schedule_parse(schedule *s, const char *spec)
{
	const char *arg = strchr(spec, ':');
	size_t n = arg ? (size_t)(arg - spec) : strlen(spec);

	if (n == 6 && strncmp(spec, "cosine", n) == 0) {
		s->kind = SCHED_COSINE;
	} else if (n == 5 && strncmp(spec, "const", n) == 0) {
		s->kind = SCHED_CONST;
	} else if (n == 4 && strncmp(spec, "step", n) == 0) {
		s->kind = SCHED_STEP;
		if (arg)
			s->step_size = parse_double("--schedule step:EPOCHS", arg + 1, 1e-9, 1e9);
	} else if (n == 9 && strncmp(spec, "multistep", n) == 0) {
		char *copy, *tok, *save = NULL;
		if (!arg)
			die(EXIT_USAGE, "--schedule multistep needs epochs, e.g. multistep:30,60");
		copy = xstrdup(arg + 1);
		s->kind = SCHED_MULTISTEP;
		s->nmilestones = 0;
		for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			if (s->nmilestones == 16)
				die(EXIT_USAGE, "--schedule multistep: at most 16 milestones");
			s->milestones[s->nmilestones++] = parse_double("--schedule multistep", tok, 0, 1e9);
		}
		free(copy);
	} else if (n == 8 && strncmp(spec, "onecycle", n) == 0) {
		s->kind = SCHED_ONECYCLE;
		if (arg)
			s->pct_start = parse_double("--schedule onecycle:PCT", arg + 1, 0.01, 0.99);
	} else {
		die(EXIT_USAGE, "--schedule: unknown schedule '%s' (const, step[:E], "
		    "multistep:E,E,..., cosine, onecycle[:PCT])", spec);
	}
}

const char *schedule_name(const schedule *s, char *buf, size_t len)
{
	size_t k;

	switch (s->kind) {
	case SCHED_CONST: snprintf(buf, len, "const"); break;
	case SCHED_STEP: snprintf(buf, len, "step:%g", s->step_size); break;
	case SCHED_COSINE: snprintf(buf, len, "cosine"); break;
	case SCHED_ONECYCLE: snprintf(buf, len, "onecycle:%g", s->pct_start); break;
	default:
		k = (size_t)snprintf(buf, len, "multistep:");
		for (int i = 0; i < s->nmilestones && k < len; i++)
			k += (size_t)snprintf(buf + k, len - k, i ? ",%g" : "%g", s->milestones[i]);
	}
	return buf;
}

static double cos_anneal(double start, double end, double pct)
{
	if (pct < 0)
		pct = 0;
	if (pct > 1)
		pct = 1;
	return end + (start - end) / 2.0 * (1.0 + cos(M_PI * pct));
}

double schedule_lr(const schedule *s, long step)
{
	double spe = (double)(s->steps_per_epoch > 0 ? s->steps_per_epoch : 1);
	long warm = lround(s->warmup * spe);
	long whole = step / (s->steps_per_epoch > 0 ? s->steps_per_epoch : 1);
	double lr = s->lr;

	if (s->kind == SCHED_ONECYCLE) {
		/* torch.optim.lr_scheduler.OneCycleLR, anneal_strategy='cos', two phases */
		double init = s->lr / s->div_factor, fin = init / s->final_div;
		double end1 = s->pct_start * (double)s->total_steps - 1, end2 = (double)s->total_steps - 1;
		if ((double)step <= end1)
			return cos_anneal(init, s->lr, end1 > 0 ? (double)step / end1 : 1);
		return cos_anneal(s->lr, fin, end2 > end1 ? ((double)step - end1) / (end2 - end1) : 1);
	}
	if (warm > 0 && step < warm)
		return s->lr * (double)(step + 1) / (double)warm;
	switch (s->kind) {
	case SCHED_STEP:
		if (s->step_size > 0)
			lr = s->lr * pow(s->gamma, floor((double)whole / s->step_size + 1e-9));
		break;
	case SCHED_MULTISTEP:
		for (int i = 0; i < s->nmilestones; i++)
			if ((double)whole >= s->milestones[i] - 1e-9)
				lr *= s->gamma;
		break;
	case SCHED_COSINE: {
		long span = s->total_steps - warm;
		lr = cos_anneal(s->lr, s->min_lr, span > 0 ? (double)(step - warm) / (double)span : 1);
		break;
	}
	default:
		break;
	}
	return lr;
}
