"""The Gradio UI, the only gradio importer: one package per tab, the same files in each.

Every tab is studio/ui/<tab>/: tab.py (build_<tab>_tab: layout and event wiring), form.py (the
inputs → a typed engine config, no gradio; where there is a form), handlers.py (<Tab>Handlers:
call the engines through `services`, format via views, gr.Error for user errors) and views.py
(engine results → what components show, no gradio). A tab with another concern has a module
named for it (compare/results.py, tune/jobs.py...). Tabs never import each other: what two
share is in common/. build_app() in app.py assembles them.
"""

from studio.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
