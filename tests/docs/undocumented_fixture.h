/* SPDX-License-Identifier: MIT */
/*
 * A header as a careless change would leave it, for docs.api_reference_catches:
 * scripts/api_man.py --check must name the two undocumented functions.
 */
#ifndef PUNCH_UNDOCUMENTED_FIXTURE_H
#define PUNCH_UNDOCUMENTED_FIXTURE_H

/* Documented: this comment is right above it. */
int punch_fixture_documented(int x);
int punch_fixture_shares_a_comment(int x);

void punch_fixture_alone(void);

/* Documented with the one under it, which this comment names:
 * punch_fixture_named. */
int punch_fixture_first(void);
int punch_fixture_named(void);

#endif
