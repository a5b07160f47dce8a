# Reference values of the accessors of a fitted model, from lme4, for tests/test_fit_accessors.py.
#
# Usage (from the repository root): Rscript scripts/reference/lme4_accessors.R
#
# Writes tests/data/lme4_accessors.json and, once, the generated data sets
# tests/data/generated_intercept.csv, generated_slopes.csv and generated_independent.csv
# (statsmodels-style simulated data: a random intercept with a categorical covariate and missing
# values; correlated random slopes; independent random slopes), drawn with set.seed(20261125).
#
# For every case and method: AIC, BIC, logLik, deviance (for a REML fit the ML deviance at the
# REML estimates, deviance(fit, REML = FALSE)), df.residual, nobs; fitted values and residuals
# named by the data's row (R's 1-based row names); predictions on a new data set with new levels
# (allow.new.levels = TRUE) and at population level (re.form = NA); lme4's postVar of every
# grouping factor; the joint conditional covariance σ²Λ(Λ'Z'ZΛ + I)⁻¹Λ' of each level's effects,
# from lme4's own Λ and Z as dense matrices; a response simulated from the fit and lme4's refit
# to it. The optimiser runs with tolerances far below lme4's defaults so that the reference
# values are those of the optimum itself (lme4's default stops about 1e-6 short in θ), at
# 15 significant digits.

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

data_dir <- file.path("tests", "data")
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))

generate <- function() {
  set.seed(20261125)
  # random intercept: 30 groups of 4-8 rows, a numeric and a three-level categorical covariate
  sizes <- sample(4:8, 30, replace = TRUE)
  g <- rep(sprintf("g%02d", 1:30), sizes)
  n <- length(g)
  x <- round(rnorm(n), 4)
  kind <- sample(c("a", "b", "c"), n, replace = TRUE)
  b <- rnorm(30, sd = 1.0)[as.integer(factor(g))]
  y <- round(1 + 0.5 * x + c(a = 0, b = 0.8, c = -0.4)[kind] + b + rnorm(n, sd = 0.7), 4)
  y[c(7, 61)] <- NA
  x[c(23, 140)] <- NA
  write.csv(data.frame(y = y, x = x, kind = kind, g = g), file.path(data_dir, "generated_intercept.csv"),
            row.names = FALSE)

  slopes <- function(file, corr) {
    subject <- rep(sprintf("s%02d", 1:40), each = 6)
    time <- rep(0:5, 40)
    sd <- c(2.0, 0.5)
    cov <- diag(sd) %*% matrix(c(1, corr, corr, 1), 2) %*% diag(sd)
    effects <- matrix(rnorm(80), 40) %*% chol(cov)
    s <- as.integer(factor(subject))
    y <- round(10 + 1.5 * time + effects[s, 1] + effects[s, 2] * time + rnorm(240, sd = 1.0), 4)
    write.csv(data.frame(y = y, time = time, subject = subject), file.path(data_dir, file), row.names = FALSE)
  }
  slopes("generated_slopes.csv", 0.3)
  slopes("generated_independent.csv", 0.0)
}

if (!file.exists(file.path(data_dir, "generated_intercept.csv"))) generate()

cases <- list(
  list(case = "sleepstudy", data = "sleepstudy.csv", formula = "Reaction ~ 1 + Days + (1 + Days | Subject)",
       newdata = data.frame(Days = c(0, 3.5, 9, 2, 7), Subject = c(308L, 309L, 999L, 372L, 999L))),
  list(case = "penicillin", data = "Penicillin.csv", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
       newdata = data.frame(plate = c("a", "x", "zz", "zz"), sample = c("F", "A", "B", "new"))),
  list(case = "pastes", data = "Pastes.csv", formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)",
       newdata = data.frame(batch = c("A", "B", "Z", "C"), cask = c("a", "c", "a", "z"))),
  list(case = "generated_intercept", data = "generated_intercept.csv", formula = "y ~ 1 + x + kind + (1 | g)",
       newdata = data.frame(x = c(0.5, -1.25, 2, NA), kind = c("c", "b", "c", "b"), g = c("g01", "g05", "new", "g02"))),
  list(case = "generated_slopes", data = "generated_slopes.csv", formula = "y ~ 1 + time + (1 + time | subject)",
       newdata = data.frame(time = c(0, 2.5, 5, 1), subject = c("s01", "s17", "new", "s40"))),
  list(case = "generated_independent", data = "generated_independent.csv",
       formula = "y ~ 1 + time + (1 + time || subject)",
       newdata = data.frame(time = c(0, 2.5, 5, 1), subject = c("s01", "s17", "new", "s40")))
)

# lme4 sorts a character grouping factor's levels in the locale's collation; the data sets'
# level names sort the same way in every locale (and the tests match levels by name anyway).
joint_condvar <- function(fit) {
  lt <- getME(fit, "Lambdat")
  q <- nrow(lt)
  m <- solve(tcrossprod(lt %*% getME(fit, "Zt")) + Diagonal(q))
  cond <- as.matrix(sigma(fit)^2 * crossprod(lt, m %*% lt))
  gp <- getME(fit, "Gp")
  cnms <- getME(fit, "cnms")
  flist <- getME(fit, "flist")
  out <- list()
  for (group in unique(names(cnms))) {
    terms <- which(names(cnms) == group)
    levels <- levels(flist[[group]])
    blocks <- lapply(seq_along(levels), function(j) {
      index <- unlist(lapply(terms, function(k) gp[k] + (j - 1) * length(cnms[[k]]) + seq_along(cnms[[k]])))
      cond[index, index, drop = FALSE]
    })
    out[[group]] <- list(levels = levels, names = unlist(cnms[terms], use.names = FALSE), blocks = blocks)
  }
  out
}

post_var <- function(fit) {
  re <- ranef(fit, condVar = TRUE)
  lapply(re, function(frame) {
    pv <- attr(frame, "postVar")
    # one array (q, q, levels) per term when a factor has several terms (lme4's layout then)
    arrays <- if (is.list(pv)) pv else list(pv)
    list(levels = rownames(frame),
         blocks = unname(lapply(arrays, function(a) lapply(seq_len(dim(a)[3]), function(j) a[, , j, drop = FALSE][, , 1]))))
  })
}

summary_of <- function(fit, y, seed) {
  list(y = y, seed = seed, objective = if (isREML(fit)) REMLcrit(fit) else deviance(fit),
       theta = unname(getME(fit, "theta")), fixef = as.list(fixef(fit)), sigma = sigma(fit), aic = AIC(fit),
       reml_p = unname(fit@devcomp$dims[["REML"]]))
}

named <- function(v) list(labels = as.integer(names(v)), values = unname(v))

results <- list()
for (case in cases) {
  data <- read.csv(file.path(data_dir, case$data), stringsAsFactors = FALSE)
  for (method in c("REML", "ML")) {
    reml <- method == "REML"
    fit <- lmer(as.formula(case$formula), data, REML = reml, control = tight)
    stopifnot(length(fit@optinfo$conv$lme4$messages) == 0)
    # A response simulated from the fit, one value per row used, drawn (seed 17, 18, ...) so that its
    # fit is not singular: on the boundary the criterion is flat and lme4's θ̂ is not good to 1e-6.
    dropped <- attr(fit@frame, "na.action")
    kept <- setdiff(seq_len(nrow(data)), dropped)
    response <- all.vars(as.formula(case$formula))[1]
    seed <- 17
    repeat {
      set.seed(seed)
      y_new <- simulate(fit, nsim = 1)[[1]]
      replaced <- data
      replaced[[response]][kept] <- y_new
      fresh <- lmer(as.formula(case$formula), replaced, REML = reml, control = tight)
      if (!isSingular(fresh)) break
      seed <- seed + 1
    }
    # lme4's refit expects a response with the data's dropped rows unless it says which they are.
    # lme4 1.1-31's refit of a REML fit rebuilds the response module with REML = TRUE, i.e. one
    # fixed effect (lmer passes p), so with p > 1 its criterion uses n - 1 for n - p; the fresh
    # fit to the same response is the reference then.
    again <- refit(fit, structure(y_new, na.action = dropped))
    results[[length(results) + 1]] <- list(
      case = case$case, data = case$data, formula = case$formula, method = method,
      aic = AIC(fit), bic = BIC(fit), loglik = as.numeric(logLik(fit)),
      deviance = if (reml) deviance(fit, REML = FALSE) else deviance(fit),
      df_resid = df.residual(fit), nobs = nobs(fit),
      objective = if (reml) REMLcrit(fit) else deviance(fit),
      theta = unname(getME(fit, "theta")),
      fitted = named(fitted(fit)), resid = named(residuals(fit)),
      population = named(predict(fit, re.form = NA)),
      newdata = as.list(case$newdata),
      predict = predict(fit, newdata = case$newdata, allow.new.levels = TRUE),
      predict_population = predict(fit, newdata = case$newdata, re.form = NA),
      postvar = post_var(fit),
      condvar = joint_condvar(fit),
      refit = summary_of(again, y_new, seed),
      fresh = summary_of(fresh, y_new, seed)
    )
  }
}

write_json(list(lme4_version = as.character(packageVersion("lme4")),
                r_version = paste(R.version$major, R.version$minor, sep = "."),
                cases = results),
           file.path(data_dir, "lme4_accessors.json"), digits = NA, auto_unbox = TRUE, na = "null", pretty = TRUE)
