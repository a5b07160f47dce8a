# Reference values for confidence intervals and likelihood-ratio tests, from lme4 and RLRsim.
#
# Usage (from the repository root): Rscript scripts/reference/inference_intervals.R
#
# Writes tests/data/inference_intervals.json and, once, the generated data sets
# tests/data/oneway_lrt.csv, clusters16_lrt.csv and crossed12_lrt.csv (R's default RNG,
# fixed seeds; an existing CSV is read, not regenerated). Parameter names are written as
# workbench names them: sd[group:effect], corr[group:a,b], sd[Residual], beta[name], in
# lme4's row order (each term's lower triangle column by column, then sigma, then the
# fixed effects). lme4 1.1-31 profiles a REML fit by its ML refit (devfun2 calls
# refitML), so both fits of a model are profiled and both intervals recorded.

suppressPackageStartupMessages({
  library(lme4)
  library(RLRsim)
  library(jsonlite)
})
stopifnot(packageVersion("lme4") == "1.1.31", packageVersion("RLRsim") == "3.1.8")

data_dir <- file.path("tests", "data")
exact_nsim <- 100000L # simulation size of every exactRLRT / exactLRT p-value
boot_nsim <- 2000L

generated <- function(name, make) {
  path <- file.path(data_dir, name)
  if (!file.exists(path)) write.csv(make(), path, row.names = FALSE)
  read.csv(path, stringsAsFactors = TRUE)
}

oneway <- generated("oneway_lrt.csv", function() {
  set.seed(20261201)
  groups <- 10
  size <- 4
  g <- factor(sprintf("g%02d", rep(seq_len(groups), each = size)))
  y <- 5 + rnorm(groups, sd = 0.45)[g] + rnorm(groups * size)
  data.frame(y = round(y, 4), g = g)
})

clusters16 <- generated("clusters16_lrt.csv", function() {
  set.seed(20261215)
  clusters <- 16
  sizes <- sample(3:12, clusters, replace = TRUE)
  cluster <- factor(sprintf("c%02d", rep(seq_len(clusters), sizes)))
  treat <- rep(rep(0:1, each = clusters / 2), sizes)
  x <- round(rnorm(sum(sizes)), 3)
  y <- 10 + 0.8 * treat + 0.5 * x + rnorm(clusters, sd = 0.6)[cluster] + rnorm(sum(sizes), sd = 1.2)
  data.frame(y = round(y, 4), treat = treat, x = x, cluster = cluster)
})

crossed12 <- generated("crossed12_lrt.csv", function() {
  set.seed(20261259)
  ns <- 12
  ni <- 12
  subj <- factor(sprintf("s%02d", rep(seq_len(ns), each = ni)))
  item <- factor(sprintf("i%02d", rep(seq_len(ni), times = ns)))
  cond <- ((as.integer(subj) + as.integer(item)) %% 2) - 0.5
  covariance <- function(sd1, sd2, r) diag(c(sd1, sd2)) %*% matrix(c(1, r, r, 1), 2) %*% diag(c(sd1, sd2))
  bs <- MASS::mvrnorm(ns, c(0, 0), covariance(1.0, 0.6, 0.3))
  bi <- MASS::mvrnorm(ni, c(0, 0), covariance(0.8, 0.5, -0.2))
  y <- 3 + 0.5 * cond + bs[as.integer(subj), 1] + bs[as.integer(subj), 2] * cond +
    bi[as.integer(item), 1] + bi[as.integer(item), 2] * cond + rnorm(ns * ni, sd = 0.8)
  data.frame(y = round(y, 4), cond = cond, subj = subj, item = item)
})

sleepstudy <- read.csv(file.path(data_dir, "sleepstudy.csv"))
sleepstudy$Subject <- factor(sleepstudy$Subject)
frames <- list(sleepstudy = sleepstudy, oneway = oneway, clusters16 = clusters16, crossed12 = crossed12)
files <- c(sleepstudy = "sleepstudy.csv", oneway = "oneway_lrt.csv", clusters16 = "clusters16_lrt.csv",
           crossed12 = "crossed12_lrt.csv")

# workbench's names of lme4's confint rows
parameter_names <- function(m) {
  cnms <- getME(m, "cnms")
  out <- character()
  for (k in seq_along(cnms)) {
    group <- names(cnms)[k]
    effects <- cnms[[k]]
    q <- length(effects)
    for (c in seq_len(q)) for (r in c:q) {
      out <- c(out, if (r == c) sprintf("sd[%s:%s]", group, effects[r])
                    else sprintf("corr[%s:%s,%s]", group, effects[c], effects[r]))
    }
  }
  c(out, "sd[Residual]", sprintf("beta[%s]", names(fixef(m))))
}

named_intervals <- function(ci, names) {
  stopifnot(nrow(ci) == length(names))
  setNames(lapply(seq_len(nrow(ci)), function(i) unname(ci[i, ])), names)
}

# The profile limits again, by root-finding on lme4's own profiled deviance (devfun2, the
# ML refit) with a tight inner optimiser: lme4's confint interpolates a spline through the
# profile points and falls back to linear interpolation where the profile is not monotone,
# so these roots are the reference where its interpolation is coarse. A fixed effect is
# profiled as lme4 does, by an offset and an ML refit of the others.
tight <- list(xtol_rel = 1e-12, ftol_abs = 1e-13, ftol_rel = 1e-15, maxeval = 100000)
profile_roots <- function(m, level = 0.95) {
  z <- qnorm((1 + level) / 2)
  dd <- lme4:::devfun2(m, useSc = TRUE, signames = TRUE)
  base <- attr(dd, "basedev")
  opt <- attr(dd, "optimum")
  nbeta <- length(fixef(m))
  nvar <- length(opt) - nbeta
  low <- c(pmax(m@lower, -1), 0)
  up <- c(ifelse(m@lower == 0, Inf, 1), Inf)
  variance_zeta <- function(w, x) {
    if (nvar == 1) return(sign(x - opt[w]) * sqrt(max(0, dd(x) - base)))
    full <- function(rest) {
      par <- numeric(nvar)
      par[w] <- x
      par[-w] <- rest
      dd(par)
    }
    start <- pmin(pmax(opt[seq_len(nvar)][-w], low[-w] + 1e-6), pmin(up[-w] - 1e-6, 1e6))
    fit <- nloptwrap(start, full, low[-w], up[-w], control = tight)
    sign(x - opt[w]) * sqrt(max(0, fit$fval - base))
  }
  ml <- refitML(m)
  X <- getME(ml, "X")
  bars <- vapply(findbars(formula(ml)), function(b) paste0("(", deparse(b), ")"), "")
  frame <- model.frame(ml)
  beta_zeta <- function(j, b) {
    frame$.offset <- b * X[, j]
    others <- X[, -j, drop = FALSE]
    colnames(others) <- sprintf(".x%d", seq_len(ncol(others)))
    data <- cbind(frame, others)
    terms <- c("0", colnames(others), bars)
    f <- as.formula(paste(names(frame)[1], "~", paste(terms, collapse = " + ")))
    parts <- lFormula(f, data, REML = FALSE, offset = .offset)
    devfun <- do.call(mkLmerDevfun, parts)
    # the ML deviance minimised over theta from the ML estimate and from lme4's start
    fits <- lapply(list(getME(ml, "theta"), parts$reTrms$theta), function(start) {
      nloptwrap(start, devfun, parts$reTrms$lower, rep(Inf, length(start)), control = tight)
    })
    sign(b - fixef(ml)[j]) * sqrt(max(0, min(vapply(fits, `[[`, 0, "fval")) - base))
  }
  limit <- function(zeta, estimate, step, bound, side) {
    previous <- estimate
    repeat {
      x <- estimate + side * step
      if (side * (x - bound) >= 0) x <- bound
      value <- zeta(x)
      if (side * value >= z) break
      if (x == bound) return(bound)
      previous <- x
      step <- 2 * step
    }
    uniroot(function(t) zeta(t) - side * z, sort(c(previous, x)), tol = 1e-11)$root
  }
  se <- sqrt(diag(as.matrix(vcov(ml))))
  out <- matrix(NA_real_, length(opt), 2)
  for (w in seq_len(nvar)) {
    step <- 0.2 * max(abs(opt[w]), 0.05)
    zeta <- function(x) variance_zeta(w, x)
    out[w, ] <- c(limit(zeta, opt[w], step, low[w], -1), limit(zeta, opt[w], step, up[w], 1))
  }
  for (j in seq_len(nbeta)) {
    zeta <- function(b) beta_zeta(j, b)
    out[nvar + j, ] <- c(limit(zeta, opt[nvar + j], se[j], -Inf, -1), limit(zeta, opt[nvar + j], se[j], Inf, 1))
  }
  out
}

fits <- list()
fit_lmer <- function(case, formula, reml) lmer(as.formula(formula), data = frames[[case]], REML = reml)
fit_case <- function(case, formula, reml) {
  m <- fit_lmer(case, formula, reml)
  stopifnot(!isSingular(m), length(m@optinfo$conv$lme4$messages) == 0)
  names <- parameter_names(m)
  entry <- list(case = case, data = files[[case]], formula = formula, method = if (reml) "REML" else "ML",
                objective = -2 * as.numeric(logLik(m)), theta = getME(m, "theta"))
  entry$wald <- named_intervals(confint(m, method = "Wald"), names)
  warned <- character()
  seconds <- system.time(ci <- withCallingHandlers(
    confint(m, method = "profile", quiet = TRUE),
    warning = function(w) {
      warned <<- c(warned, conditionMessage(w))
      invokeRestart("muffleWarning")
    }))[["elapsed"]]
  entry$profile <- named_intervals(ci, names)
  # the rows whose profile lme4 reports as non-monotone (it interpolates them linearly)
  lme4_names <- rownames(ci)
  flagged <- lme4_names[vapply(lme4_names, function(n) {
    any(endsWith(warned, paste0("profile for ", n))) || any(startsWith(warned, paste0("bad spline fit for ", n, ":")))
  }, TRUE)]
  entry$profile_nonmonotone <- I(names[match(flagged, lme4_names)])
  entry$profile_seconds <- seconds
  entry$profile_roots <- named_intervals(profile_roots(m), names)
  fits[[length(fits) + 1L]] <<- entry
  m
}

sleep_formula <- "Reaction ~ 1 + Days + (1 + Days | Subject)"
sleep_reml <- fit_case("sleepstudy", sleep_formula, TRUE)
sleep_ml <- fit_case("sleepstudy", sleep_formula, FALSE)
oneway_formula <- "y ~ 1 + (1 | g)"
oneway_reml <- fit_case("oneway", oneway_formula, TRUE)
oneway_ml <- fit_case("oneway", oneway_formula, FALSE)
clusters_formula <- "y ~ 1 + treat + x + (1 | cluster)"
clusters_reml <- fit_case("clusters16", clusters_formula, TRUE)
clusters_ml <- fit_case("clusters16", clusters_formula, FALSE)
crossed_formula <- "y ~ 1 + cond + (1 + cond | subj) + (1 + cond | item)"
crossed_reml <- fit_case("crossed12", crossed_formula, TRUE)
crossed_ml <- fit_case("crossed12", crossed_formula, FALSE)

# Ordinary least squares: lm's log-likelihoods (ML and REML), coefficients and SEs
ols <- list()
ols_case <- function(case, formula) {
  m <- lm(as.formula(formula), frames[[case]])
  ols[[length(ols) + 1L]] <<- list(
    case = case, data = files[[case]], formula = formula,
    deviance_ml = -2 * as.numeric(logLik(m, REML = FALSE)),
    criterion_reml = -2 * as.numeric(logLik(m, REML = TRUE)),
    coef = as.list(coef(m)), se = setNames(as.list(coef(summary(m))[, 2]), names(coef(m))), sigma = sigma(m),
    confint_t = named_intervals(confint(m), sprintf("beta[%s]", names(coef(m))))
  )
  m
}
oneway_lm <- ols_case("oneway", "y ~ 1")
clusters_lm <- ols_case("clusters16", "y ~ 1 + treat + x")
clusters_lm_x <- ols_case("clusters16", "y ~ 1 + x")

# Likelihood-ratio tests: 2 (logLik larger - logLik smaller) on the fits' own criterion
# (ML deviances, or REML criteria of fits with the same fixed effects), as
# anova(..., refit = FALSE); npar counts beta, theta and sigma.
npar <- function(m) attr(logLik(m), "df")
mixture_p <- function(statistic, df) {
  lower <- if (df > 1) pchisq(statistic, df - 1, lower.tail = FALSE) else as.numeric(statistic <= 0)
  0.5 * lower + 0.5 * pchisq(statistic, df, lower.tail = FALSE)
}
tests <- list()
loglik <- function(m, method) {
  if (inherits(m, "lm")) logLik(m, REML = method == "REML") else logLik(m)
}
lrt_case <- function(case, smaller, larger, method, m0, m1, exact = NULL) {
  stopifnot(!inherits(m1, "merMod") || isREML(m1) == (method == "REML"))
  stopifnot(!inherits(m0, "merMod") || isREML(m0) == (method == "REML"))
  statistic <- max(0, 2 * (as.numeric(loglik(m1, method)) - as.numeric(loglik(m0, method))))
  df <- npar(m1) - npar(m0)
  entry <- list(case = case, data = files[[case]], smaller = smaller, larger = larger, method = method,
                statistic = statistic, df = df, p_chi2 = pchisq(statistic, df, lower.tail = FALSE),
                p_mixture = mixture_p(statistic, df))
  if (inherits(m0, "merMod") && inherits(m1, "merMod")) {
    table <- anova(m0, m1, refit = FALSE)
    stopifnot(abs(table$Chisq[2] - statistic) < 1e-8 * max(1, statistic), table$Df[2] == df)
  }
  if (!is.null(exact)) entry$exact <- exact
  tests[[length(tests) + 1L]] <<- entry
}
exact_entry <- function(result, kind) {
  list(kind = kind, statistic = unname(result$statistic), p_value = result$p.value, nsim = exact_nsim)
}

# sleepstudy: the random slope (SD and correlation), the correlation alone, the slope's variance
sleep_ri <- "Reaction ~ 1 + Days + (1 | Subject)"
sleep_uncorr <- "Reaction ~ 1 + Days + (1 | Subject) + (0 + Days | Subject)"
lrt_case("sleepstudy", sleep_ri, sleep_formula, "ML",
         fit_lmer("sleepstudy", sleep_ri, FALSE), sleep_ml)
lrt_case("sleepstudy", sleep_ri, sleep_formula, "REML", fit_lmer("sleepstudy", sleep_ri, TRUE), sleep_reml)
lrt_case("sleepstudy", sleep_uncorr, sleep_formula, "ML",
         fit_lmer("sleepstudy", sleep_uncorr, FALSE), sleep_ml)
sleep_ri_reml <- fit_lmer("sleepstudy", sleep_ri, TRUE)
sleep_uncorr_reml <- fit_lmer("sleepstudy", sleep_uncorr, TRUE)
sleep_slope_only <- fit_lmer("sleepstudy", "Reaction ~ 1 + Days + (0 + Days | Subject)", TRUE)
lrt_case("sleepstudy", sleep_ri, sleep_uncorr, "REML", sleep_ri_reml, sleep_uncorr_reml,
         exact_entry(exactRLRT(sleep_slope_only, sleep_uncorr_reml, sleep_ri_reml, nsim = exact_nsim, seed = 101),
                     "RLRT"))

# one-way: the random intercept against ordinary least squares
lrt_case("oneway", "y ~ 1", oneway_formula, "REML", oneway_lm, oneway_reml,
         exact_entry(exactRLRT(oneway_reml, nsim = exact_nsim, seed = 102), "RLRT"))
lrt_case("oneway", "y ~ 1", oneway_formula, "ML", oneway_lm, oneway_ml,
         exact_entry(suppressMessages(exactLRT(oneway_ml, oneway_lm, nsim = exact_nsim, seed = 103)), "LRT"))

# 16 clusters: the cluster variance; then it together with the between-cluster treatment
lrt_case("clusters16", "y ~ 1 + treat + x", clusters_formula, "REML", clusters_lm, clusters_reml,
         exact_entry(exactRLRT(clusters_reml, nsim = exact_nsim, seed = 104), "RLRT"))
lrt_case("clusters16", "y ~ 1 + treat + x", clusters_formula, "ML", clusters_lm, clusters_ml,
         exact_entry(suppressMessages(exactLRT(clusters_ml, clusters_lm, nsim = exact_nsim, seed = 105)), "LRT"))
lrt_case("clusters16", "y ~ 1 + x", clusters_formula, "ML", clusters_lm_x, clusters_ml,
         exact_entry(exactLRT(clusters_ml, clusters_lm_x, nsim = exact_nsim, seed = 106), "LRT"))

# crossed 12 x 12: the item slope (SD and correlation) of the maximal model; the item
# intercept variance given the subjects' (exactRLRT's approximation with mA and m0)
crossed_no_item_slope <- "y ~ 1 + cond + (1 + cond | subj) + (1 | item)"
lrt_case("crossed12", crossed_no_item_slope, crossed_formula, "ML",
         fit_lmer("crossed12", crossed_no_item_slope, FALSE), crossed_ml)
crossed_both <- fit_lmer("crossed12", "y ~ 1 + cond + (1 | subj) + (1 | item)", TRUE)
crossed_subj <- fit_lmer("crossed12", "y ~ 1 + cond + (1 | subj)", TRUE)
crossed_item <- fit_lmer("crossed12", "y ~ 1 + cond + (1 | item)", TRUE)
lrt_case("crossed12", "y ~ 1 + cond + (1 | subj)", "y ~ 1 + cond + (1 | subj) + (1 | item)", "REML",
         crossed_subj, crossed_both,
         exact_entry(exactRLRT(crossed_item, crossed_both, crossed_subj, nsim = exact_nsim, seed = 107), "RLRT"))

# Parametric bootstrap of the sleepstudy REML fit (bootMer, the fit's own method): the mean
# and SD of each parameter's bootstrap distribution
boot <- bootMer(sleep_reml, function(m) {
  th <- getME(m, "theta")
  c(lme4:::Cv_to_Sv(th, n = lengths(m@cnms), s = sigma(m)), fixef(m))
}, nsim = boot_nsim, seed = 108)
stopifnot(ncol(boot$t) == length(parameter_names(sleep_reml)))
bootstrap <- list(list(
  case = "sleepstudy", data = files[["sleepstudy"]], formula = sleep_formula, method = "REML", nsim = boot_nsim,
  mean = setNames(as.list(colMeans(boot$t)), parameter_names(sleep_reml)),
  sd = setNames(as.list(apply(boot$t, 2, sd)), parameter_names(sleep_reml))
))

out <- list(
  versions = list(R = paste(R.version$major, R.version$minor, sep = "."),
                  lme4 = as.character(packageVersion("lme4")), RLRsim = as.character(packageVersion("RLRsim"))),
  exact_nsim = exact_nsim,
  fits = fits, ols = ols, tests = tests, bootstrap = bootstrap
)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(data_dir, "inference_intervals.json"))
