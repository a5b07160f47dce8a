# Reference values for tests/test_scale.py: lme4 fits of rescaled and shifted data.
#
# Usage (from the repository root): Rscript scripts/reference/lme4_scale.R
#
# Writes tests/data/lme4_scale.json and, once, tests/data/tiny_sigma.csv: a random intercept
# with group SD 1e3 and residual SD 1e-6 (20 subjects x 10 times, set.seed(20261202)).
# Cases: sleepstudy `Reaction ~ 1 + Days + (1 + Days | Subject)` with Reaction + offset
# (1e3, 1e6, 1e8, 1e9, 1e12) and with Days x scale (1e-8 ... 1e8), REML and ML, and the
# tiny-sigma data by `y ~ 1 + time + (1 | subject)`. A case lme4 cannot fit records its error. lme4 runs with tolerances far below its
# defaults; every value is printed at 17 significant digits.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

data_dir <- file.path("tests", "data")
tight <- lmerControl(optimizer = "nloptwrap", calc.derivs = FALSE,
                     check.conv.singular = "ignore",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))

tiny_path <- file.path(data_dir, "tiny_sigma.csv")
if (!file.exists(tiny_path)) {
  set.seed(20261202)
  subjects <- 20
  times <- 0:9
  d <- expand.grid(time = times, subject = sprintf("s%02d", seq_len(subjects)))
  b <- rnorm(subjects, 0, 1e3)
  d$y <- 250 + 10 * d$time + b[as.integer(factor(d$subject))] + rnorm(nrow(d), 0, 1e-6)
  write.csv(d[, c("y", "time", "subject")], tiny_path, row.names = FALSE)
}
tiny <- read.csv(tiny_path, colClasses = c("numeric", "numeric", "character"))
sleep <- read.csv(file.path(data_dir, "sleepstudy.csv"), colClasses = c("numeric", "numeric", "character"))

one <- function(formula, data, reml) {
  # lme4 fails outright on some scales ("Downdated VtV is not positive definite"): recorded
  fit <- tryCatch(suppressWarnings(lmer(formula, data, REML = reml, control = tight)),
                  error = function(e) conditionMessage(e))
  if (is.character(fit)) return(list(error = fit))
  list(objective = if (reml) REMLcrit(fit) else deviance(fit),
       sigma = sigma(fit), theta = unname(getME(fit, "theta")),
       fixef = as.list(fixef(fit)),
       fixef_se = as.list(sqrt(diag(as.matrix(vcov(fit))))))
}

cases <- list()
for (reml in c(TRUE, FALSE)) {
  method <- if (reml) "REML" else "ML"
  for (offset in c(0, 1e3, 1e6, 1e8, 1e9, 1e12)) {
    d <- sleep
    d$Reaction <- d$Reaction + offset
    cases[[sprintf("offset=%g-%s", offset, method)]] <-
      c(list(kind = "offset", value = offset, reml = reml), one(Reaction ~ 1 + Days + (1 + Days | Subject), d, reml))
  }
  for (scale in 10^c(-8, -6, -4, -2, 2, 4, 6, 8)) {
    d <- sleep
    d$Days <- d$Days * scale
    cases[[sprintf("scale=%g-%s", scale, method)]] <-
      c(list(kind = "scale", value = scale, reml = reml), one(Reaction ~ 1 + Days + (1 + Days | Subject), d, reml))
  }
  cases[[sprintf("tiny_sigma-%s", method)]] <-
    c(list(kind = "tiny_sigma", value = 0, reml = reml), one(y ~ 1 + time + (1 | subject), tiny, reml))
}
writeLines(toJSON(list(lme4 = as.character(packageVersion("lme4")), cases = cases),
                  digits = I(17), auto_unbox = TRUE, pretty = TRUE),
           file.path(data_dir, "lme4_scale.json"))
