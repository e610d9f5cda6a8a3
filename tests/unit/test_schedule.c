/* Unit tests of cull-train's learning-rate schedules (trainer/schedule.c). */
#include "check.h"
#include "train.h"
#include "io.h"

#include <string.h>

#define NEAR(a, b) (fabs((a) - (b)) < 1e-12)

/* A schedule of `kind` at peak lr 0.1 over `total` steps of `spe` steps an epoch. */
static schedule sched(int kind, long spe, long total)
{
	schedule s;

	memset(&s, 0, sizeof s);
	s.kind = kind;
	s.lr = 0.1;
	s.gamma = 0.1;
	s.pct_start = 0.3;
	s.div_factor = 25;
	s.final_div = 1e4;
	s.steps_per_epoch = spe;
	s.total_steps = total;
	return s;
}

static void test_lr(void)
{
	schedule s = sched(SCHED_COSINE, 1, 110);
	s.warmup = 10;
	CHECK(NEAR(schedule_lr(&s, 0), 0.01) && NEAR(schedule_lr(&s, 9), 0.1) &&
	      NEAR(schedule_lr(&s, 60), 0.05) && NEAR(schedule_lr(&s, 110), 0),
	      "cosine schedule with linear warmup");
	s = sched(SCHED_STEP, 1, 100);
	s.step_size = 30;
	CHECK(NEAR(schedule_lr(&s, 29), 0.1) && NEAR(schedule_lr(&s, 30), 0.01) &&
	      NEAR(schedule_lr(&s, 65), 0.001), "step schedule");
	s = sched(SCHED_CONST, 4, 40);
	s.warmup = 0.5;        /* 2 steps */
	CHECK(NEAR(schedule_lr(&s, 0), 0.05) && NEAR(schedule_lr(&s, 1), 0.1) &&
	      NEAR(schedule_lr(&s, 39), 0.1), "constant with a fractional warmup (half an epoch)");
	s = sched(SCHED_MULTISTEP, 10, 1000);
	schedule_parse(&s, "multistep:30,60");
	CHECK(NEAR(schedule_lr(&s, 299), 0.1) && NEAR(schedule_lr(&s, 300), 0.01) &&
	      NEAR(schedule_lr(&s, 600), 0.001), "multistep: x gamma at epochs 30 and 60");
	s = sched(SCHED_ONECYCLE, 1, 100);
	CHECK(NEAR(schedule_lr(&s, 0), 0.1 / 25) && NEAR(schedule_lr(&s, 29), 0.1) &&
	      NEAR(schedule_lr(&s, 99), 0.1 / 25 / 1e4),
	      "one-cycle: lr/25 up to lr at 30%% of the steps, down to lr/25/1e4 (torch's OneCycleLR)");
}

static void test_names(void)
{
	static const char *const specs[] = { "const", "cosine", "step:5", "multistep:30,60",
	                                     "onecycle:0.25" };
	int same = 1;
	char buf[64];

	for (size_t i = 0; i < sizeof specs / sizeof *specs; i++) {
		schedule s = sched(SCHED_COSINE, 1, 1);
		schedule_parse(&s, specs[i]);
		same = same && strcmp(schedule_name(&s, buf, sizeof buf), specs[i]) == 0;
	}
	CHECK(same, "schedule names parse and print back");
}

int main(void)
{
	cull_init("test_schedule");
	test_lr();
	test_names();
	return CHECK_DONE();
}
