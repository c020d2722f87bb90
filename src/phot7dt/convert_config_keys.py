"""How each key of a tract7dt 0.7 configuration maps onto a phot7dt run config.

Used by :mod:`phot7dt.convert_config`. A tract7dt key is one of

- an **input or output path** (:data:`INPUT_PATHS`): written to ``run.params.<name>``
  as an absolute path, relative paths resolved against the YAML file's folder;
- **not applied** (:data:`NOT_APPLIED`): phot7dt has no use for it; the converter
  drops it with one warning naming the key and the reason;
- **copied**: every other key of a section phot7dt models (same section and key
  names), written to ``run.params.<section>.<key>``; :data:`NOTES` adds a caveat
  for a few of them.

:data:`TRACT7DT_KEYS` lists tract7dt 0.7's keys (its ``config.py`` defaults), so a
key in neither tract7dt nor phot7dt can be reported as unknown. :func:`key_table`
renders the whole mapping as Markdown (``python -m phot7dt.convert_config --list-keys``).
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from phot7dt.config import registered_sections

#: tract7dt 0.7's configuration keys, by section (nested keys dotted).
TRACT7DT_KEYS: dict[str, tuple[str, ...]] = {
    section: tuple(keys.split())
    for section, keys in {
        "inputs": "tile_name input_catalog image_list_file gaiaxp_synphot_csv",
        "outputs": "work_dir epsf_dir patches_dir patch_inputs_dir tractor_out_dir"
        " final_catalog cropped_images_dir",
        "image_scaling": "zp_ref",
        "crop": "enabled margin plot_pre_crop display_downsample post_crop_display_downsample"
        " overlay_catalog overlay_downsample_full overlay_downsample_crop overlay_crop_box"
        " overlay_crop_enabled",
        "checks": "require_wcs_alignment wcs_tolerance.crval wcs_tolerance.crpix"
        " wcs_tolerance.cd wcs_tolerance.cdelt require_same_shape",
        "source_saturation_cut": "enabled radius_pix require_all_bands",
        "logging": "ignore_warnings level file format",
        "plotting": "dpi",
        "performance": "frame_prep_workers white_stack_workers",
        "epsf": "use_gaiaxp epsf_ngrid ngrid skip_empty_epsf_patches thresh_sigma minarea"
        " cutout_size edge_pad min_sep max_stars q_range psfstar_mode gaia_mag_min"
        " gaia_mag_max gaia_snap_to_sep gaia_forced_k_fwhm gaia_forced_rmin_pix"
        " gaia_forced_rmax_pix gaia_snr_min gaia_match_r_pix gaia_seed_sat_r"
        " gaia_seed_sat_div oversamp maxiters do_clip recenter_boxsize final_psf_size"
        " save_star_montage_max background_subtract_patch background_boxsize"
        " background_filtersize background_source_mask_sigma background_mask_dilate"
        " star_local_bkg_subtract star_local_bkg_annulus_rin_pix"
        " star_local_bkg_annulus_rout_pix star_local_bkg_sigma star_local_bkg_minpix"
        " save_patch_background_diagnostics save_star_local_background_diagnostics"
        " diagnostics_show_colorbar save_growth_curve save_residual_diagnostics"
        " residual_diag_max_stars parallel_bands max_workers",
        "patches": "halo_pix_min",
        "patch_inputs": "save_patch_inputs skip_empty_patch include_wcs_in_payload max_workers"
        " gzip_compresslevel keep_payloads_in_memory",
        "patch_run": "enable_multi_band_simultaneous_fitting python_exe resume max_workers"
        " threads_per_process gal_model n_opt_iters dlnp_stop r_ap eps_flux sersic_n_init"
        " re_fallback_pix psf_model psf_fallback_model min_epsf_nstars_for_use"
        " ncircular_gaussian_n hybrid_psf_n gaussian_mixture_n fallback_default_fwhm_pix"
        " fallback_stamp_radius_pix cutout_size cutout_max_sources cutout_start"
        " cutout_data_p_lo cutout_data_p_hi cutout_model_p_lo cutout_model_p_hi"
        " cutout_resid_p_abs no_cutouts no_patch_overview flag_maxiter_margin",
        "moffat_psf": "fwhm_default_pix beta radius_pix module_path",
        "merge": "pattern wcs_fits",
        "zp": "enabled inject_gaia_sources gaia_mag_min gaia_mag_max match_radius_arcsec"
        " min_box_size_pix clip_sigma clip_max_iters",
    }.items()
}

#: tract7dt input/output path key -> phot7dt run-time parameter.
INPUT_PATHS: dict[str, str] = {
    "inputs.input_catalog": "input_catalog",
    "inputs.image_list_file": "image_list",
    "inputs.gaiaxp_synphot_csv": "gaiaxp_synphot",
    "outputs.work_dir": "work_dir",
}

#: Copied keys holding a file path: made absolute against the YAML's folder, as tract7dt does.
CONFIG_RELATIVE_PATHS = frozenset({"merge.wcs_fits"})

_OUTPUT_PATHS = (
    "phot7dt writes every product to a fixed path under work_dir, see docs/outputs.md; "
    "an entry in conf/local/catalog.yml moves one"
)
_PAYLOADS = (
    "patch payloads reference pixel regions of the memory-mapped frames; nothing is "
    "pickled, compressed or written per patch"
)

#: tract7dt key (or ``section.*``) -> why it does not apply to phot7dt.
NOT_APPLIED: dict[str, str] = {
    "inputs.tile_name": "informational in tract7dt; phot7dt has no tile name",
    "outputs.epsf_dir": _OUTPUT_PATHS,
    "outputs.patches_dir": _OUTPUT_PATHS,
    "outputs.patch_inputs_dir": _OUTPUT_PATHS,
    "outputs.tractor_out_dir": _OUTPUT_PATHS,
    "outputs.final_catalog": "the final catalog is "
    "`<work_dir>/07_model_output/output_catalog.csv`; an entry in conf/local/catalog.yml moves it",
    "outputs.cropped_images_dir": _OUTPUT_PATHS,
    "logging.*": "logging is set by conf/logging.yml via KEDRO_LOGGING_CONFIG, not by parameters",
    "performance.frame_prep_workers": "frames are prepared from their headers alone, "
    "which needs no worker threads",
    "patch_inputs.save_patch_inputs": _PAYLOADS,
    "patch_inputs.include_wcs_in_payload": _PAYLOADS,
    "patch_inputs.max_workers": _PAYLOADS,
    "patch_inputs.gzip_compresslevel": _PAYLOADS,
    "patch_inputs.keep_payloads_in_memory": _PAYLOADS,
    "patch_run.python_exe": "patches are fitted by a worker pool of the running Python, "
    "not by one subprocess per patch",
    "moffat_psf.fwhm_default_pix": "a tract7dt legacy key; the fallback FWHM default is "
    "patch_run.fallback_default_fwhm_pix",
    "moffat_psf.module_path": "a tract7dt legacy key, unused",
    "merge.pattern": "patch results are a dataset of the run, not files found by a glob",
}

#: Copied keys whose meaning differs in a way a tract7dt user should know.
NOTES: dict[str, str] = {
    "inputs.gaiaxp_synphot_csv": "null or absent becomes `none`, and then zp.enabled is "
    "set to false (zero points need the GaiaXP table)",
    "source_saturation_cut.radius_pix": "acts in `mode: exclude` only (tract7dt's "
    "behaviour); phot7dt's default `fit_wings` fits saturated sources from their wings",
    "source_saturation_cut.require_all_bands": "acts in `mode: exclude` only",
    "patch_run.no_cutouts": "tract7dt's default (false) draws one PNG per source; "
    "phot7dt's default is true",
    "patch_run.no_patch_overview": "tract7dt's default is false, phot7dt's true",
    "merge.wcs_fits": "made absolute against the YAML file's folder",
}


def tract7dt_paths() -> list[str]:
    """Every tract7dt 0.7 key path, ``section.key``, in tract7dt's section order."""
    return [f"{section}.{key}" for section, keys in TRACT7DT_KEYS.items() for key in keys]


def not_applied_reason(path: str) -> str | None:
    """Why the tract7dt key ``path`` does not apply to phot7dt, or None when it does."""
    for pattern, reason in NOT_APPLIED.items():
        if fnmatchcase(path, pattern):
            return reason
    return None


def is_tract7dt_key(path: str) -> bool:
    """Whether ``path`` (``section.key``, nested keys dotted) is a tract7dt 0.7 key."""
    section, _, key = path.partition(".")
    return key in TRACT7DT_KEYS.get(section, ())


def key_table() -> str:
    """The mapping of tract7dt 0.7's keys onto the run config, as a Markdown table."""
    sections = registered_sections()
    rows = ["| tract7dt key | run config (`run.params.…`) | note |", "|---|---|---|"]
    for section, keys in TRACT7DT_KEYS.items():
        if f"{section}.*" in NOT_APPLIED:
            rows.append(f"| `{section}.*` | — (warning) | {NOT_APPLIED[f'{section}.*']} |")
            continue
        if section in sections:
            special = any(f"{section}.{key}" in {**NOT_APPLIED, **NOTES} for key in keys)
            copied = "copied (but see below)" if special else "copied"
            rows.append(f"| `{section}.*` | `{section}.*` | {copied} |")
        for key in keys:
            path = f"{section}.{key}"
            if path in INPUT_PATHS:
                note = "absolute; relative paths resolved against the YAML's folder"
                extra = f"; {NOTES[path]}" if path in NOTES else ""
                rows.append(f"| `{path}` | `{INPUT_PATHS[path]}` | {note}{extra} |")
            elif (reason := not_applied_reason(path)) is not None:
                rows.append(f"| `{path}` | — (warning) | {reason} |")
            elif path in NOTES:
                rows.append(f"| `{path}` | `{path}` | {NOTES[path]} |")
    rows.append(
        "| phot7dt's own sections (`scene`, `sky_and_artefacts`, …; docs/parameters.md) "
        "| same | copied when present |"
    )
    return "\n".join(rows) + "\n"
