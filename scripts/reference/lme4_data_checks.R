# Reference behaviour of lme4's fit-time data checks, for tests/test_data_checks.py.
#
# Usage (from the repository root): Rscript scripts/reference/lme4_data_checks.R
#
# Writes tests/data/lme4_data_checks.json: for each case on sleepstudy, lme4's error, or the
# messages and warnings it gave and the fit (criterion, sigma, fixed effects, 17 digits).
# Cases: a grouping factor with one level; as many levels as observations; a column equal to
# Days plus 1e-12 noise (the noise from tests/data/sleepstudy_noise.csv, written once with
# set.seed(20261202)); an all-zero column; a factor with an unused level; the response on the
# right-hand side (Days ~ 1 + Days); a response of zeros.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

data_dir <- file.path("tests", "data")
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
sleep <- read.csv(file.path(data_dir, "sleepstudy.csv"), colClasses = c("numeric", "numeric", "character"))
noise_path <- file.path(data_dir, "sleepstudy_noise.csv")
if (!file.exists(noise_path)) {
  set.seed(20261202)
  write.csv(data.frame(noise = 1e-12 * rnorm(nrow(sleep))), noise_path, row.names = FALSE)
}
d <- sleep
d$Days2 <- d$Days + read.csv(noise_path)$noise
d$zero <- 0
d$level <- factor(ifelse(d$Days < 5, "high", "low"), levels = c("high", "low", "unused"))
d$y0 <- 0
one <- sleep
one$Subject <- "a"

run <- function(formula, data) {
  said <- character(0)
  fit <- tryCatch(
    withCallingHandlers(lmer(formula, data, control = tight),
      message = function(m) { said <<- c(said, trimws(conditionMessage(m))); invokeRestart("muffleMessage") },
      warning = function(w) { said <<- c(said, conditionMessage(w)); invokeRestart("muffleWarning") }),
    error = function(e) conditionMessage(e))
  if (is.character(fit)) return(list(error = fit, said = said))
  list(said = said, objective = REMLcrit(fit), sigma = sigma(fit), fixef = as.list(fixef(fit)))
}

cases <- list(
  one_level = run(Reaction ~ 1 + Days + (1 | Subject), one),
  levels_equal_observations = run(Reaction ~ 1 + (1 | Subject), sleep[seq(1, nrow(sleep), by = 10), ]),
  near_duplicate = run(Reaction ~ 1 + Days + Days2 + (1 | Subject), d),
  zero_column = run(Reaction ~ 1 + Days + zero + (1 | Subject), d),
  unused_level = run(Reaction ~ 1 + level + (1 | Subject), d),
  response_on_right = run(Days ~ 1 + Days + (1 | Subject), d),
  zero_response = run(y0 ~ 1 + Days + (1 | Subject), d)
)
writeLines(toJSON(list(lme4 = as.character(packageVersion("lme4")), cases = cases),
                  digits = I(17), auto_unbox = TRUE, pretty = TRUE, null = "null"),
           file.path(data_dir, "lme4_data_checks.json"))
